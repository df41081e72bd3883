"""Drives the operator console in a real, headless Chromium (Debian's chromium and
chromium-driver, through Selenium), as an operator would.

Usage: console_browser.py CONFIG.json
CONFIG names: url, token, smtp (host:port, the MX), submission (host:port, plaintext AUTH
allowed), sender/sender_password (a user who may relay), connector (its name), outside
(an address whose domain's route defers), domain_admin/domain_admin_password, foreign_user
(a user of a domain the domain administrator does not hold), shots (a directory for the
screenshots). Exits non-zero with the reason on the first failed check; prints each step.
"""
import json
import os
import smtplib
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CFG = json.load(open(sys.argv[1]))
URL = CFG["url"].rstrip("/")
SHOTS = CFG["shots"]
XSS = "<script>alert('xss')</script>"


def fail(why):
    print("FAILED:", why, flush=True)
    try:
        print("at", D.current_url, "the page says:\n" + D.find_element(By.TAG_NAME, "body").text, flush=True)
        D.save_screenshot(os.path.join(SHOTS, "failure.png"))
    except Exception:  # the browser itself is gone: nothing more to show
        pass
    raise SystemExit(1)


def check(ok, why):
    if not ok:
        fail(why)


def browser():
    o = Options()
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,1000", "--no-first-run", "--password-store=basic"]:
        o.add_argument(a)
    o.binary_location = "/usr/bin/chromium"
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


D = browser()
D.set_page_load_timeout(30)


def no_console_errors(where, refused=False):
    """Nothing the page did was logged as an error (scripts, resources, CSP), and no
    stored value ran as a script (an alert would be open). Chromium logs the load of a
    401/403 page (a refusal this script asks for, `refused`) as an error, sometimes only
    by the next check: those are let through, and where a refusal is not expected the
    page's own heading is checked instead."""
    expected = ("status of 401", "status of 403")
    errors = [e for e in D.get_log("browser") if e.get("level") == "SEVERE"
              and not (e.get("source") == "network" and any(x in e["message"] for x in expected))]
    if not refused:
        heading = D.find_elements(By.TAG_NAME, "h1")
        check(not heading or heading[0].text != "Refused", f"{where} was refused")
    check(not errors, f"console errors on {where}: {errors}")
    try:
        text = D.switch_to.alert.text
        fail(f"a script ran on {where}: alert {text!r}")
    except NoAlertPresentException:
        pass


def click_and_wait(element):
    """Clicks and waits until the next page has replaced this one and has loaded: the old
    document carries a mark the new one lacks (asking while the browser is between the two
    may fail; that only means: not yet)."""
    D.execute_script("window.bhOld = true")
    element.click()

    def replaced(d):
        try:
            return d.execute_script("return !window.bhOld && document.readyState === 'complete'")
        except WebDriverException:
            return False
    WebDriverWait(D, 20).until(replaced)


def shot(name):
    path = os.path.join(SHOTS, f"{name}.png")
    D.save_screenshot(path)
    print("screenshot", path, flush=True)


def go(path, name=None, refused=False):
    D.get(URL + path)
    no_console_errors(path, refused)
    if name:
        shot(name)


def submit(form_id, values, button=None, refused=False):
    form = D.find_element(By.ID, form_id)
    for k, v in values.items():
        field = form.find_element(By.NAME, k)
        if field.tag_name == "select":
            D.execute_script("arguments[0].value = arguments[1]", field, v)
        else:
            field.clear()
            field.send_keys(v)
    click_and_wait(form.find_element(By.CSS_SELECTOR, button) if button else
                   form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    no_console_errors(form_id, refused)


def text():
    return D.find_element(By.TAG_NAME, "body").text


def click_button(row_css, label):
    """Clicks the button labelled `label` inside the first element matching row_css."""
    row = D.find_element(By.CSS_SELECTOR, row_css)
    for b in row.find_elements(By.TAG_NAME, "button"):
        if b.text == label:
            click_and_wait(b)
            no_console_errors(label)
            return
    fail(f"no {label!r} button in {row_css}: {row.get_attribute('outerHTML')[:2000]}")


def sign_in(operator, password, refused=False):
    go("/login")
    D.find_element(By.NAME, "operator").clear()
    D.find_element(By.NAME, "operator").send_keys(operator)
    D.find_element(By.NAME, "password").send_keys(password)
    click_and_wait(D.find_element(By.CSS_SELECTOR, "#login button"))
    no_console_errors("sign-in", refused)


def sign_out():
    click_and_wait(D.find_element(By.ID, "sign-out"))
    no_console_errors("sign-out")
    check("/login" in D.current_url, f"signed out, at {D.current_url}")


def step(name):
    print("step:", name, flush=True)


try:
    step("sign in with the admin token")
    go("/", None)
    check("/login" in D.current_url, "an anonymous visit is sent to sign in")
    shot("01-sign-in")
    sign_in("", "wrong token", refused=True)
    check("Wrong operator name or password" in text(), "a wrong password is refused")
    sign_in("", CFG["token"])
    check(D.find_element(By.TAG_NAME, "h1").text == "Overview", "signed in: the overview")
    check("backend" in D.find_element(By.ID, "nodes").text, "the back-end's heartbeat is shown")
    check("frontend" in D.find_element(By.ID, "nodes").text, "the front-end's heartbeat is shown")

    step("create a domain and a user")
    go("/domains")
    submit("add-domain", {"name": "console.test"})
    check("Domain console.test added." in text(), "domain added")
    check("console.test" in D.find_element(By.ID, "domains").text, "domain listed")
    go("/users")
    submit("add-user", {"address": "not an address", "password": "carol password 1", "quota": ""})
    err = D.find_elements(By.CSS_SELECTOR, "#add-user span.err[data-field=address]")
    check(err and err[0].text, "a bad address is refused beside the address field")
    submit("add-user", {"address": "carol@console.test", "password": "carol password 1", "quota": "lots"})
    err = D.find_elements(By.CSS_SELECTOR, "#add-user span.err[data-field=quota]")
    check(err and "MiB" in err[0].text, "a bad quota is refused beside the quota field")
    submit("add-user", {"address": "carol@console.test", "password": "", "quota": "10"})
    err = D.find_elements(By.CSS_SELECTOR, "#add-user span.err[data-field=password]")
    check(err and "password" in err[0].text.lower(), f"an empty password is refused beside its field: {text()}")
    submit("add-user", {"address": "carol@console.test", "password": "carol password 1", "quota": "10"})
    check("User carol@console.test added." in text(), "user added")
    go("/users?q=carol", "03-users")
    check("carol@console.test" in D.find_element(By.ID, "users").text, "user found by search")
    click_and_wait(D.find_element(By.LINK_TEXT, "carol@console.test"))
    check(D.find_element(By.ID, "user-address").text == "carol@console.test", "the user's page")

    step("names: an alias added, then found by search (domains too)")
    go("/aliases?domain=console.test")
    submit("add", {"a": "info@console.test", "b": "carol@console.test"})
    check("Done: add alias info@console.test." in text(), f"alias added: {text()}")
    go("/aliases?domain=console.test&q=INFO", "04-aliases")
    check("info@console.test" in D.find_element(By.ID, "aliases").text, "the alias found")
    check("1 matching" in D.find_element(By.CSS_SELECTOR, "p.pager").text, "one match")
    go("/aliases?domain=console.test&q=zzz")
    check("0 matching" in D.find_element(By.CSS_SELECTOR, "p.pager").text, "no match")
    go("/domains?q=console")
    listed = D.find_element(By.ID, "domains").text
    check("console.test" in listed and "example.com" not in listed, f"domains by search: {listed}")

    step("deliver a message and find it in message tracking")
    host, port = CFG["smtp"].rsplit(":", 1)
    with smtplib.SMTP(host, int(port), local_hostname="client.example") as s:
        s.sendmail("dave@sender.example", ["carol@console.test"],
                   "Subject: tracked\r\nMessage-ID: <tracked-1@sender.example>\r\n\r\nhello\r\n")
    for _ in range(40):
        go("/tracking?q=tracked-1@sender.example")
        if D.find_elements(By.CSS_SELECTOR, "section.tracked"):
            break
        time.sleep(0.25)
    shot("06-tracking")
    found = D.find_elements(By.CSS_SELECTOR, "section.tracked")
    check(found, "the delivered message is found in tracking")
    t = found[0].text
    check("accepted" in t and "stored in carol@console.test" in t and "client.example" in t,
          f"the path of the message: {t}")

    step("hold and release a queued message (its headers shown as text)")
    host, port = CFG["submission"].rsplit(":", 1)
    with smtplib.SMTP(host, int(port), local_hostname="laptop.example") as s:
        s.login(CFG["sender"], CFG["sender_password"])
        s.sendmail(CFG["sender"], [CFG["outside"]],
                   f"Subject: {XSS}\r\nMessage-ID: <queued-1@example.com>\r\n\r\nqueued\r\n")
    go("/queue?sender=" + CFG["sender"], "05-queue")
    link = D.find_element(By.CSS_SELECTOR, "#queue a")
    queue_id = link.text
    click_and_wait(link)
    no_console_errors("queued message")
    check(XSS in D.find_element(By.ID, "headers").text, "a queued message's header shown as text")
    check("&lt;script&gt;" in D.page_source, "and escaped in the page")
    click_button("#actions", "Hold")
    check(D.find_element(By.ID, "held").text == "yes", "held")
    shot("05-queue-message")
    click_button("#actions", "Release")
    check(D.find_element(By.ID, "held").text == "no", "released")
    # Events are written in batches (at most half a second later): look until they are in.
    for _ in range(40):
        go(f"/tracking?q={queue_id}")
        found = D.find_elements(By.CSS_SELECTOR, "section.tracked")
        t = found[0].text if found else ""
        if "released from hold by operator admin-token (console)" in t and "deferred" in t:
            break
        time.sleep(0.25)
    check("held by operator admin-token (console)" in t and "released from hold by operator admin-token (console)" in t
          and "deferred" in t,
          f"the attempt and the operator's actions tracked: {t}")

    step("retrieve a connector now and see its result")
    go("/connectors?tab=scheduling")
    row = f"tr[data-connector={CFG['connector']}]"
    click_button(row, "Retrieve now")
    check("Retrieval asked of 1 connector(s)" in text(), "retrieval asked")
    for _ in range(60):
        go("/connectors?tab=scheduling")
        fetched = D.find_element(By.CSS_SELECTOR, row + " td.fetched").text
        if fetched.startswith("1 /"):
            break
        time.sleep(0.25)
    if not fetched.startswith("1 /"):
        go("/connectors?tab=troubleshooting")
        fail(f"the poll fetched the message: {fetched}: {D.find_element(By.ID, 'troubles').text}")
    shot("07-connectors-scheduling")
    go("/connectors", "07-connectors-mailboxes")
    check(XSS in D.find_element(By.ID, "connectors").text, "a connector's user name shown as text")
    D.find_element(By.CSS_SELECTOR, "#connectors tr[data-connector=evil] summary").click()
    form = D.find_element(By.CSS_SELECTOR, "#connectors tr[data-connector=evil] details form")
    form.find_element(By.NAME, "server").clear()
    form.find_element(By.NAME, "server").send_keys("127.0.0.2")
    click_and_wait(form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    no_console_errors("edit connector")
    check("Connector evil changed." in text(), f"a connector edited: {text()}")
    check("127.0.0.2:9" in D.find_element(By.CSS_SELECTOR, "#connectors tr[data-connector=evil]").text,
          "its new server shown")
    go("/connectors?tab=troubleshooting", "07-connectors-troubleshooting")

    step("a form posted without its CSRF token is refused")
    go("/users")
    D.execute_script("document.querySelector('#add-user input[name=csrf]').remove()")
    submit("add-user", {"address": "mallory@console.test", "password": "mallory password", "quota": ""},
           refused=True)
    check("CSRF" in D.find_element(By.ID, "refused").text, f"refused: {text()}")
    go("/users?q=mallory")
    check("mallory" not in D.find_element(By.ID, "users").text, "and nothing was done")

    step("every other page, with stored values shown as text")
    go("/routes", "08-routes")
    check(XSS in D.find_element(By.ID, "routes").text, "a route's host shown as text")
    go("/dkim?domain=console.test")
    submit("add-key", {"a": "console.test", "b": "ed25519"})
    check("publish its record" in text(), "a DKIM key added")
    shot("09-dkim")
    for path, name in [("/", "02-overview"), ("/groups", "04-groups"),
                       ("/contacts", "04-contacts"), ("/quarantine", "10-quarantine"),
                       ("/operators", "11-operators"), ("/domains", "02-domains")]:
        go(path, name)
        check(D.find_element(By.TAG_NAME, "h1").text, f"{path} has a heading")
    sign_out()
    go("/users")
    check("/login" in D.current_url, "signed out: pages need a sign-in again")

    step("a domain administrator sees only their domain")
    sign_in(CFG["domain_admin"], CFG["domain_admin_password"])
    check(D.find_element(By.TAG_NAME, "h1").text == "Overview", "the domain administrator is in")
    go("/user/" + CFG["foreign_user"], refused=True)
    check("Refused" == D.find_element(By.TAG_NAME, "h1").text, "another domain's user is refused")
    go("/users")
    users = D.find_element(By.ID, "users").text
    check(CFG["foreign_user"] not in users and CFG["sender"] in users, f"own users only: {users}")
    go("/routes", refused=True)
    check("Refused" == D.find_element(By.TAG_NAME, "h1").text, "the cluster's routes are refused")
    go("/")
    sign_out()
    print("screenshots in", SHOTS, flush=True)
    print("OK", flush=True)
finally:
    D.quit()
