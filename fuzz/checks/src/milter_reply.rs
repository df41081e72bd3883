//! The milter reply decoder and one message's conversation on arbitrary filter output: no
//! panic; a decoded reply never claims more octets than there are, and `Incomplete` only
//! when the packet's length says more is coming (never for a length past the limit, which is
//! an error at once); whatever the replies, the conversation ends (a verdict or a protocol
//! error) within a bounded number of steps.
use bridgehead_frontend::filter::codec::{decode, Decoded, MAX_REPLY};
use bridgehead_frontend::filter::conversation::{After, Conversation, Next};
use bridgehead_frontend::filter::message::{Envelope, Headers};

/// Runs the target on one input; panics when an invariant breaks.
pub fn run(data: &[u8]) {
    let env = Envelope {
        client_name: "unknown".into(),
        client_address: "192.0.2.1".into(),
        client_port: 25,
        family: b'4',
        helo: "h".into(),
        mail: vec!["<a@b>".into()],
        rcpts: vec![vec!["<c@d>".into()]],
        macros: Vec::new(),
    };
    let headers = Headers {
        fields: vec![("Subject".into(), "x".into())],
    };
    let body: Vec<&[u8]> = vec![b"body\r\n"];
    let mut conv = Conversation::new(&env, &headers, &body);
    let mut rest = data;
    let mut steps = 0;
    // The conversation asks; each reply comes from the input in turn.
    'outer: loop {
        steps += 1;
        assert!(steps < 10_000, "the conversation does not end");
        let reply_wanted = match conv.next_command() {
            Next::Done(_) => break,
            Next::Send { reply, .. } => reply,
        };
        if !reply_wanted {
            continue;
        }
        loop {
            let r = match decode(rest) {
                Ok(Decoded::Reply(r, used)) => {
                    assert!(
                        used >= 5 && used <= rest.len(),
                        "used {used} of {}",
                        rest.len()
                    );
                    rest = &rest[used..];
                    r
                }
                Ok(Decoded::Incomplete) => {
                    if rest.len() >= 4 {
                        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                        assert!(
                            len <= MAX_REPLY && rest.len() < 4 + len,
                            "Incomplete with it all there"
                        );
                    }
                    break 'outer;
                }
                Err(_) => break 'outer,
            };
            match conv.reply(r) {
                Ok(After::Next) => break,
                Ok(After::More) => continue,
                Ok(After::Done(_)) | Err(_) => break 'outer,
            }
        }
    }
}
