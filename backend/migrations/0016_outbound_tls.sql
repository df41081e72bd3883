-- Routes may ask for DANE (RFC 7672): the next hop's DNSSEC-validated TLSA records must
-- exist and its certificate must match one.
ALTER TABLE routes DROP CONSTRAINT routes_tls_check;
ALTER TABLE routes ADD CONSTRAINT routes_tls_check
    CHECK (tls IN ('none', 'opportunistic', 'required', 'verify', 'dane', 'implicit'));

-- RFC 8689 REQUIRETLS: the message may only be sent on over verified TLS.
ALTER TABLE outbound_queue ADD COLUMN requiretls boolean NOT NULL DEFAULT false;

-- TLS-RPT (RFC 8460): sessions counted per reporting period, policy domain, policy and
-- result ('' for successful sessions), added to by every back-end (in batches).
CREATE TABLE tls_report_counts (
    period_start   timestamptz NOT NULL,
    policy_domain  text NOT NULL,
    policy_type    text NOT NULL,      -- sts, tlsa, no-policy-found
    policy_strings text[] NOT NULL,
    mx_hosts       text[] NOT NULL,
    result_type    text NOT NULL,      -- '' for successful sessions
    receiving_mx   text NOT NULL,
    receiving_ip   text NOT NULL,
    detail         text NOT NULL,      -- the last failure's words
    sessions       bigint NOT NULL,
    PRIMARY KEY (period_start, policy_domain, policy_type, result_type, receiving_mx, receiving_ip)
);

-- A period's report for a domain is sent once, by the back-end that records it here.
CREATE TABLE tls_reports_sent (
    period_start  timestamptz NOT NULL,
    policy_domain text NOT NULL,
    sent_at       timestamptz NOT NULL DEFAULT now(),
    rua           text NOT NULL,       -- where it went ('' when the domain asks for none)
    PRIMARY KEY (period_start, policy_domain)
);
