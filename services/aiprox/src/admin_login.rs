//! `aiprox all` brings the web UI up for a newcomer: without `AIPROX_ADMIN_TOKEN`
//! on a loopback listener, a token is generated into the data directory
//! (`admin.token`, beside `secret.key`, mode 0600) and kept across restarts, and
//! a one-time login link is printed on start-up. A listener reachable from other
//! machines without a token refuses to start.

use std::net::SocketAddr;
use std::path::Path;

use secrecy::SecretString;

/// The admin token: the configured one, else the one in `file` (made on first
/// use). Errors when the admin would listen beyond loopback without a token.
pub fn token(
    configured: Option<SecretString>,
    listen: SocketAddr,
    file: &Path,
) -> anyhow::Result<SecretString> {
    if let Some(token) = configured {
        return Ok(token);
    }
    if !listen.ip().is_loopback() {
        anyhow::bail!(
            "admin.listen is {listen}, reachable from other machines: set AIPROX_ADMIN_TOKEN (a generated token is only for loopback)"
        );
    }
    if let Ok(text) = std::fs::read_to_string(file) {
        let text = text.trim();
        if !text.is_empty() {
            return Ok(SecretString::from(text.to_owned()));
        }
    }
    let token = admin::session::random_hex()
        .map_err(|e| anyhow::anyhow!("no randomness for the admin token: {e}"))?;
    write_private(file, &token)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    tracing::info!(file = %file.display(), "admin token generated");
    Ok(SecretString::from(token))
}

fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(file)?, text.as_bytes())
}

/// Where a browser on this machine reaches a listener (`0.0.0.0` → `127.0.0.1`).
pub fn local_url(listen: SocketAddr) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    format!("http://{host}:{}", listen.port())
}

/// The start-up lines: the UI's address and its one-time login link. On stderr,
/// for the person who started aiprox, never into the structured log.
pub fn announce(admin_url: &str, code: &str) {
    eprintln!(
        "\n  aiprox web UI: {admin_url}/\n  sign in (link works once, for 15 minutes): {admin_url}/login#code={code}\n"
    );
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_token_is_generated_once_on_loopback_and_refused_beyond() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data/admin.token");
        let loopback: SocketAddr = "127.0.0.1:8081".parse().unwrap();
        let first = token(None, loopback, &file).unwrap();
        assert_eq!(first.expose_secret().len(), 64);
        let again = token(None, loopback, &file).unwrap();
        assert_eq!(first.expose_secret(), again.expose_secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let wide: SocketAddr = "0.0.0.0:8081".parse().unwrap();
        assert!(
            token(None, wide, &file)
                .unwrap_err()
                .to_string()
                .contains("AIPROX_ADMIN_TOKEN")
        );
        assert_eq!(
            token(Some("given".into()), wide, &file)
                .unwrap()
                .expose_secret(),
            "given"
        );
    }

    #[test]
    fn a_wildcard_listener_is_reached_on_loopback() {
        assert_eq!(
            local_url("0.0.0.0:8081".parse().unwrap()),
            "http://127.0.0.1:8081"
        );
        assert_eq!(
            local_url("127.0.0.1:9".parse().unwrap()),
            "http://127.0.0.1:9"
        );
    }
}
