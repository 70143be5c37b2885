//! Browser sessions for the web UI: the admin token (or a one-time login code
//! that `aiprox all` prints) is exchanged once for an HttpOnly, SameSite=Strict
//! cookie; from then on the admin API accepts that cookie as it accepts the
//! bearer token.
//!
//! - The cookie is `<expiry>.<id>.<HMAC-SHA256(token, expiry.id)>`: any admin
//!   replica that knows the token can check it, and changing the token ends every
//!   session. Logout clears it in the browser and revokes its id on this replica.
//! - Writes by cookie need the `x-aiprox-csrf` header, which a cross-site form or
//!   a simple cross-site request cannot send (SameSite=Strict already keeps the
//!   cookie off cross-site requests; this is the second lock).
//! - A login code works once, for a few minutes; it is never the token.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

pub const COOKIE: &str = "aiprox_session";
pub const CSRF_HEADER: &str = "x-aiprox-csrf";
/// How long a session lasts without a new login.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long the start-up login link works.
pub const CODE_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default)]
pub struct Sessions {
    /// One-time login codes and when each stops working (Unix s).
    codes: Mutex<Vec<(String, u64)>>,
    /// Ids logged out on this replica.
    revoked: Mutex<HashSet<String>>,
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// 32 random bytes as hex.
pub fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn signature(token: &SecretString, payload: &str) -> String {
    // Any key length is valid for HMAC.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl Sessions {
    /// Admits a one-time login code (made with [`random_hex`]) for [`CODE_TTL`].
    pub fn add_code(&self, code: String) {
        let mut codes = self.codes.lock();
        let now = now_s();
        codes.retain(|(_, until)| *until > now);
        codes.push((code, now + CODE_TTL.as_secs()));
    }

    /// Uses up a login code; true when it was valid.
    pub fn redeem_code(&self, code: &str) -> bool {
        let mut codes = self.codes.lock();
        let now = now_s();
        let before = codes.len();
        codes.retain(|(c, until)| {
            !(crate::core::constant_time_eq(c.as_bytes(), code.as_bytes()) && *until > now)
        });
        codes.len() < before
    }

    /// A new session cookie's value.
    pub fn open(&self, token: &SecretString) -> Result<String, getrandom::Error> {
        let payload = format!("{}.{}", now_s() + SESSION_TTL.as_secs(), random_hex()?);
        let sig = signature(token, &payload);
        Ok(format!("{payload}.{sig}"))
    }

    /// Whether a cookie value is a live session signed with this token.
    pub fn check(&self, token: &SecretString, value: &str) -> bool {
        let Some((payload, sig)) = value.rsplit_once('.') else {
            return false;
        };
        let Some((expiry, id)) = payload.split_once('.') else {
            return false;
        };
        let live = expiry.parse::<u64>().is_ok_and(|e| e > now_s());
        live && crate::core::constant_time_eq(signature(token, payload).as_bytes(), sig.as_bytes())
            && !self.revoked.lock().contains(id)
    }

    /// Ends a session on this replica.
    pub fn close(&self, value: &str) {
        if let Some(id) = value.split('.').nth(1) {
            self.revoked.lock().insert(id.to_owned());
        }
    }
}

/// The session cookie's value in a `Cookie` header.
pub fn cookie_value(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session; `Secure` when the admin is served over TLS
/// (behind an ingress), which the request's `x-forwarded-proto` tells.
pub fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        SESSION_TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_checked_by_its_signature_and_ends_on_logout() {
        let sessions = Sessions::default();
        let token = SecretString::from("t0ken");
        let value = sessions.open(&token).unwrap();
        assert!(sessions.check(&token, &value));
        assert!(!sessions.check(&SecretString::from("other"), &value));
        let last = if value.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &value[..value.len() - 1]);
        assert!(!sessions.check(&token, &forged));
        let (_, rest) = value.split_once('.').unwrap();
        assert!(!sessions.check(&token, &format!("1.{rest}")), "expired");
        sessions.close(&value);
        assert!(!sessions.check(&token, &value));
    }

    #[test]
    fn a_login_code_works_once() {
        let sessions = Sessions::default();
        let code = random_hex().unwrap();
        sessions.add_code(code.clone());
        assert!(!sessions.redeem_code("nope"));
        assert!(sessions.redeem_code(&code));
        assert!(!sessions.redeem_code(&code));
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; aiprox_session=v.x.y; b=2".parse().unwrap(),
        );
        assert_eq!(cookie_value(&headers), Some("v.x.y"));
    }
}
