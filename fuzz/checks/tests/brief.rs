//! Every fuzz target, briefly, in every `cargo test`: the seed corpora and the regressions
//! (inputs that once broke a target) replayed, then random mutations of them for a short
//! while per target. Not coverage-guided — `fuzz/run` is the real fuzzer — but it runs each
//! target's invariants on fresh inputs in CI. A failing input is saved under
//! `target/fuzz-brief/` and named in the failure, with the seed that reproduces the run
//! (`BRIDGEHEAD_FUZZ_SEED`); `BRIDGEHEAD_FUZZ_MS` sets the time per target.
use bridgehead_fuzz_checks::TARGETS;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Fragments that steer inputs into the protocols' interesting corners.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n.\r\n",
    b"\n.\n",
    b".\r\n",
    b"..",
    b"QUIT\r\n",
    b"RSET\r\n",
    b"DATA\r\n",
    b"BDAT 7\r\n",
    b"BDAT 3 LAST\r\n",
    b"STLS\r\n",
    b"STARTTLS\r\n",
    b"AUTH PLAIN\r\n",
    b"MAIL FROM:<a@b>\r\n",
    b"RCPT TO:<c@d>\r\n",
    b"DELE 1\r\n",
    b"RETR 2\r\n",
    b"USER u\r\nPASS p\r\n",
    b"@",
    b"<>",
    b"\"",
    b"\0",
    b"\xff",
    b" SMTPUTF8",
    "jürgen@".as_bytes(),
    b"\xc3",
    "\u{fffd}".as_bytes(),
    b"=?utf-8?b?",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"--x\r\n",
    b"To: ",
    b"Authentication-Results: mx.example.net; spf=pass\r\n",
    b"authentication-results:\r\n\tMX.EXAMPLE.NET;",
    b"\r\n ",
];

fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "md"))
        .map(|p| std::fs::read(&p).unwrap())
        .collect()
}

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..rng.gen_range(1..=4) {
        let len = input.len();
        let at = if len == 0 { 0 } else { rng.gen_range(0..=len) };
        match rng.gen_range(0..7) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                input[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                input[i] = rng.gen();
            }
            2 => {
                let t = TOKENS[rng.gen_range(0..TOKENS.len())];
                input.splice(at..at, t.iter().copied());
            }
            3 if len > 0 => {
                let end = (at + rng.gen_range(1..=16)).min(len);
                input.drain(at.min(end)..end);
            }
            4 if len > 0 => {
                let start = rng.gen_range(0..len);
                let end = (start + rng.gen_range(1..=64)).min(len);
                let piece = input[start..end].to_vec();
                input.splice(at..at, piece);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                let from = rng.gen_range(0..=other.len());
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
            _ => input.truncate(at),
        }
    }
    input.truncate(64 * 1024);
}

fn run_one(name: &str, target: fn(&[u8]), input: &[u8], seed: u64) {
    let outcome = std::panic::catch_unwind(|| target(input));
    if let Err(panic) = outcome {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-brief");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{seed}"));
        std::fs::write(&path, input).unwrap();
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "fuzz target {name} failed ({why}) on {}; BRIDGEHEAD_FUZZ_SEED={seed} repeats the run; \
             once fixed, copy the input to fuzz/regressions/{name}/",
            path.display()
        );
    }
}

#[test]
fn every_fuzz_target_briefly() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let seed: u64 = std::env::var("BRIDGEHEAD_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    let per_target = Duration::from_millis(
        std::env::var("BRIDGEHEAD_FUZZ_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1500),
    );
    eprintln!("BRIDGEHEAD_FUZZ_SEED={seed}");
    for &(name, target) in TARGETS {
        let mut corpus = files_in(&fuzz.join("seeds").join(name));
        assert!(!corpus.is_empty(), "{name} has seeds");
        corpus.extend(files_in(&fuzz.join("regressions").join(name)));
        for input in &corpus {
            run_one(name, target, input, seed);
        }
        let mut rng = StdRng::seed_from_u64(seed ^ name.len() as u64);
        let started = Instant::now();
        let mut runs = 0u32;
        while started.elapsed() < per_target {
            let mut input = corpus[rng.gen_range(0..corpus.len())].clone();
            mutate(&mut rng, &mut input, &corpus);
            run_one(name, target, &input, seed);
            runs += 1;
        }
        eprintln!("{name}: {} inputs replayed, {runs} mutations", corpus.len());
        assert!(runs > 0, "{name} ran");
    }
}
