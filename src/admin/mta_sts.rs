//! `admin mta-sts`: what to publish so that other servers send to us only over verified TLS
//! (RFC 8461): the `_mta-sts` record of each domain, the policy host, and the policy file.
use super::client::Client;
use anyhow::Result;
use bridgehead_proto::v1 as pb;

pub async fn run(c: &mut Client) -> Result<()> {
    let info = c.mta_sts_published(pb::Empty {}).await?.into_inner();
    println!("; DNS, for each domain: the policy's id, and the policy host (a web server with a");
    println!(
        "; certificate for it, serving the file below at /.well-known/mta-sts.txt, for example"
    );
    println!("; in front of the back-ends' --metrics-listen, which answers that path)");
    for d in &info.domains {
        println!("_mta-sts.{d}. IN TXT \"v=STSv1; id={}\"", info.id);
        println!("; mta-sts.{d}. IN CNAME <your HTTPS host>");
    }
    println!();
    println!("; https://mta-sts.<domain>/.well-known/mta-sts.txt (Content-Type: text/plain):");
    print!("{}", info.policy.replace("\r\n", "\n"));
    Ok(())
}
