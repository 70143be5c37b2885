//! Compiles proto/aiprox/v1/events.proto. protoc comes from protoc-bin-vendored
//! unless PROTOC names one, so a fresh machine needs nothing installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../../proto/aiprox/v1/events.proto";
    println!("cargo:rerun-if-changed={proto}");
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        let mut config = prost_build::Config::new();
        config.protoc_executable(protoc);
        config.bytes(["."]);
        config.compile_protos(&[proto], &["../../proto"])?;
        return Ok(());
    }
    let mut config = prost_build::Config::new();
    config.bytes(["."]);
    config.compile_protos(&[proto], &["../../proto"])?;
    Ok(())
}
