//! Compiles `bridgehead/v1/*.proto` with protox (pure Rust), so no system `protoc` is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["bridgehead/v1/bridgehead.proto"];
    let fds = protox::compile(files, ["."])?;
    tonic_prost_build::configure()
        // Message content handed over as `Bytes`: a spooled message goes out in chunks that
        // share its one buffer instead of copying it (SMTP's memory per connection).
        .bytes(".bridgehead.v1.SubmitPart.data")
        .bytes(".bridgehead.v1.WholeMessage.content")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    Ok(())
}
