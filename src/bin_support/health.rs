//! `imgworker health`: a minimal HTTP client for the worker's `/healthz`,
//! for container health checks where no curl is installed.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// How long connecting and reading may each take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// GET /healthz on `addr`: exit 0 on a 200, else 1 with the reason on
/// stderr. An unspecified bind address (`0.0.0.0`) is asked on loopback.
pub fn check(mut addr: SocketAddr) -> ExitCode {
    if addr.ip().is_unspecified() {
        addr.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    match get_healthz(addr) {
        Ok(reply) if reply.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(reply) => {
            eprintln!(
                "imgworker: unhealthy: {}",
                reply.lines().next().unwrap_or("no answer")
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("imgworker: no answer from {addr}: {e}");
            ExitCode::from(1)
        }
    }
}

/// The whole HTTP reply to `GET /healthz`.
fn get_healthz(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}
