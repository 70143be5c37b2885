//! Two things the admin needs at compile time:
//! - the gRPC code of proto/aiprox/v1/admin.proto (server and client), with the
//!   vendored protoc, so a fresh machine needs nothing installed;
//! - the web UI (`frontend/`), built with Vite into `$OUT_DIR/ui` and embedded
//!   in the binary ([`crate::ui`]), so `cargo run -p aiprox -- all` serves it.
//!   It needs Node.js and npm; without them (or with `AIPROX_BUILD_UI=0`) the
//!   binary serves a page saying how to get the UI. `AIPROX_UI_DIST=DIR` embeds
//!   a UI already built into DIR instead (the container's Node stage).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../../proto/aiprox/v1/admin.proto";
    println!("cargo:rerun-if-changed={proto}");
    let mut config = prost_build::Config::new();
    if std::env::var_os("PROTOC").is_none() {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_with_config(config, &[proto], &["../../proto"])?;
    embed_ui()
}

fn embed_ui() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let frontend = Path::new("../../frontend").canonicalize()?;
    for input in [
        "src",
        "public",
        "index.html",
        "package-lock.json",
        "vite.config.ts",
    ] {
        println!("cargo:rerun-if-changed={}", frontend.join(input).display());
    }
    println!("cargo:rerun-if-env-changed=AIPROX_BUILD_UI");
    println!("cargo:rerun-if-env-changed=AIPROX_UI_DIST");
    let (dist, built) = match std::env::var_os("AIPROX_UI_DIST") {
        Some(prebuilt) => {
            let dist = PathBuf::from(prebuilt);
            let built = dist.join("index.html").is_file();
            (dist, built)
        }
        None => {
            let dist = out.join("ui");
            let built =
                std::env::var("AIPROX_BUILD_UI").as_deref() != Ok("0") && build(&frontend, &dist);
            (dist, built)
        }
    };
    let mut files = Vec::new();
    if built {
        collect(&dist, &dist, &mut files)?;
    } else {
        println!(
            "cargo:warning=the web UI was not built (needs Node.js 20 and npm: `apt install nodejs npm`); the admin serves a page saying so"
        );
    }
    files.sort();
    let mut code = String::from(
        "/// The built UI: (path, bytes, gzipped bytes or empty), sorted by path.\npub static ASSETS: &[(&str, &[u8], &[u8])] = &[\n",
    );
    for (path, file) in &files {
        let gz = gzipped(&out, path, file)?.map_or_else(
            || "&[]".to_owned(),
            |g| format!("include_bytes!({:?})", g.display().to_string()),
        );
        code.push_str(&format!(
            "    ({path:?}, include_bytes!({:?}), {gz}),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out.join("ui_assets.rs"), code)?;
    Ok(())
}

/// Text assets over 1 KiB, gzipped once here rather than on every request
/// (`$OUT_DIR/ui-gz/…`); `None` for the rest.
fn gzipped(out: &Path, web: &str, file: &Path) -> std::io::Result<Option<PathBuf>> {
    let text = [".js", ".css", ".html", ".svg", ".json"]
        .iter()
        .any(|e| web.ends_with(e));
    let bytes = std::fs::read(file)?;
    if !text || bytes.len() < 1024 {
        return Ok(None);
    }
    let target = out.join("ui-gz").join(web.trim_start_matches('/'));
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut encoder, &bytes)?;
    std::fs::write(&target, encoder.finish()?)?;
    Ok(Some(target))
}

/// `npm ci` when the dependencies are missing, then `vite build` into `dist`.
fn build(frontend: &Path, dist: &Path) -> bool {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let run = |args: &[&str]| {
        Command::new(npm)
            .args(args)
            .current_dir(frontend)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !frontend.join("node_modules/.package-lock.json").exists()
        && !run(&["ci", "--no-audit", "--no-fund"])
    {
        return false;
    }
    let out_dir = dist.display().to_string();
    run(&[
        "exec",
        "--",
        "vite",
        "build",
        "--logLevel",
        "warn",
        "--emptyOutDir",
        "--outDir",
        &out_dir,
    ])
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            let web = format!("/{}", rel.to_string_lossy().replace('\\', "/"));
            files.push((web, path.canonicalize()?));
        }
    }
    Ok(())
}
