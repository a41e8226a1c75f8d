//! RL.HIT from Rust (the `redis` crate), mapped to HTTP rate-limit headers.
//!
//! Headers: draft-ietf-httpapi-ratelimit-headers-07 (RateLimit-Policy,
//! RateLimit), the older X-RateLimit-* trio, and Retry-After when denied.
//!
//!     REDIS_URL=redis://127.0.0.1:6379 cargo run --manifest-path examples/rust/Cargo.toml

const LIMIT: u64 = 3; // requests ...
const WINDOW_S: u64 = 10; // ... per 10 seconds

/// The five integers of an RL.HIT reply.
#[derive(Debug, Clone, Copy)]
struct Hit {
    allowed: bool,
    limit: i64,
    remaining: i64,
    reset_after_ms: i64,
    retry_after_ms: i64,
}

impl Hit {
    fn from_reply(reply: &[i64]) -> Result<Hit, String> {
        match *reply {
            [allowed, limit, remaining, reset_after_ms, retry_after_ms] => Ok(Hit {
                allowed: allowed == 1,
                limit,
                remaining,
                reset_after_ms,
                retry_after_ms,
            }),
            _ => Err(format!("RL.HIT replied {reply:?}, not five integers")),
        }
    }
}

/// Whole seconds, rounded up.
fn ceil_s(ms: i64) -> i64 {
    (ms + 999).div_euclid(1000)
}

/// Maps a hit to the HTTP status line and the rate-limit headers.
fn rate_limit_headers(h: Hit) -> (&'static str, Vec<(&'static str, String)>) {
    let reset = ceil_s(h.reset_after_ms);
    let mut headers = vec![
        ("RateLimit-Policy", format!("{LIMIT};w={WINDOW_S}")),
        (
            "RateLimit",
            format!("limit={}, remaining={}, reset={reset}", h.limit, h.remaining),
        ),
        ("X-RateLimit-Limit", h.limit.to_string()),
        ("X-RateLimit-Remaining", h.remaining.to_string()),
        ("X-RateLimit-Reset", reset.to_string()),
    ];
    // retry_after_ms == -1: the request can never pass (COST > limit).
    if !h.allowed && h.retry_after_ms >= 0 {
        headers.push(("Retry-After", ceil_s(h.retry_after_ms).to_string()));
    }
    let status = if h.allowed { "200 OK" } else { "429 Too Many Requests" };
    (status, headers)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut con = redis::Client::open(url)?.get_connection()?;
    let key = format!("example:rust:{}", std::process::id());
    let limits = format!("{LIMIT}/{WINDOW_S}s");
    redis::cmd("RL.CLEAR").arg(&key).query::<i64>(&mut con)?;
    // Requests 1-3 pass, 4 is denied (Retry-After), 5 costs 4 > 3 (never).
    for (n, cost) in [1u64, 1, 1, 1, 4].into_iter().enumerate() {
        let reply: Vec<i64> = redis::cmd("RL.HIT")
            .arg(&key)
            .arg(&limits)
            .arg("COST")
            .arg(cost)
            .query(&mut con)?;
        let (status, headers) = rate_limit_headers(Hit::from_reply(&reply)?);
        let shown: Vec<String> = reply.iter().map(i64::to_string).collect();
        println!(
            "# request {}: RL.HIT {key} {limits} COST {cost} -> {}",
            n + 1,
            shown.join(" ")
        );
        println!("HTTP/1.1 {status}");
        for (name, value) in headers {
            println!("{name}: {value}");
        }
        println!();
    }
    redis::cmd("RL.CLEAR").arg(&key).query::<i64>(&mut con)?;
    Ok(())
}
