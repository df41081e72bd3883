//! The admin API client: where the admin API is (flags, environment or a dev data
//! directory), the bearer token on every call, operator-readable errors, and passwords read
//! from standard input or a prompt — never from argv.
use anyhow::{anyhow, bail, Context, Result};
use bridgehead_proto::v1::admin_client::AdminClient;
use std::io::IsTerminal;
use std::path::PathBuf;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

pub type Client = AdminClient<InterceptedService<Channel, Bearer>>;

#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

/// Where the admin API is, as given.
struct Endpoint {
    url: Option<String>,
    token: Option<String>,
    ca: Option<PathBuf>,
    data_dir: Option<PathBuf>,
}

/// Connects to the admin API: from flags or environment, else a dev cluster's data directory.
pub async fn connect(
    url: Option<String>,
    token: Option<String>,
    ca: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> Result<Client> {
    let (url, token, ca) = connection(&Endpoint {
        url,
        token,
        ca,
        data_dir,
    })?;
    let bearer = MetadataValue::try_from(format!("Bearer {token}"))
        .context("the admin token has characters that are not allowed")?;
    let mut endpoint =
        Channel::from_shared(url.clone()).with_context(|| format!("bad admin URL {url:?}"))?;
    if let Some(ca) = ca {
        let pem = std::fs::read(&ca)
            .with_context(|| format!("reading the CA certificate {}", ca.display()))?;
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(pem));
        endpoint = endpoint
            .tls_config(tls)
            .context("TLS settings for the admin API")?;
    }
    let channel = endpoint.connect().await.with_context(|| {
        format!("cannot reach the admin API at {url} (is the back-end running?)")
    })?;
    Ok(AdminClient::with_interceptor(channel, Bearer(bearer)))
}

/// The URL and token to use, from flags, environment or a dev data directory.
fn connection(args: &Endpoint) -> Result<(String, String, Option<PathBuf>)> {
    let mut dir = (None, None, None);
    if let Some(d) = &args.data_dir {
        if args.url.is_none() || args.token.is_none() {
            let path = d.join("endpoints.json");
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading {} (is this a `bridgehead dev` data directory?)",
                    path.display()
                )
            })?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            let get = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            let ca = get("grpc_ca").map(PathBuf::from);
            let scheme = if ca.is_some() { "https" } else { "http" };
            dir = (
                get("grpc").map(|g| format!("{scheme}://{g}")),
                get("admin_token"),
                ca,
            );
        }
    }
    let ca = args.ca.clone().or(dir.2);
    let url = args.url.clone().or(dir.0).ok_or_else(|| {
        anyhow!("no admin API given: use --url, BRIDGEHEAD_ADMIN_URL or --data-dir")
    })?;
    let url = match (url.contains("://"), ca.is_some()) {
        (true, _) => url,
        (false, true) => format!("https://{url}"),
        (false, false) => format!("http://{url}"),
    };
    let token = args.token.clone().or(dir.1).ok_or_else(|| {
        anyhow!("no admin token given: use --token, BRIDGEHEAD_ADMIN_TOKEN or --data-dir")
    })?;
    Ok((url, token, ca))
}

/// Turns a gRPC status into a message for the operator.
pub fn explain(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<Status>() {
        Some(s) if s.code() == Code::Unavailable => {
            anyhow!("the back-end is unavailable: {}", s.message())
        }
        Some(s) => anyhow!("{}", s.message()),
        None => e,
    }
}

pub fn read_password(prompt: &str) -> Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(prompt)?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        bail!("empty password: give one on standard input or at the prompt");
    }
    Ok(password)
}
