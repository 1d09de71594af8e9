//! A Git server on loopback for the GitOps tests: Git's own smart-HTTP
//! backend (`git http-backend`, a CGI program) behind a small HTTP server,
//! serving the bare repositories under one directory for reading, as a Git
//! host serves Flux. The test writes a repository through a work tree that
//! pushes to the bare one on disk.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

/// A running Git server.
pub struct GitServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

/// Runs `git` in `dir`, failing the test with its output when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Portico tests",
            "-c",
            "user.email=tests@portico.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Answers one request with `git http-backend`.
async fn backend(root: web::Data<PathBuf>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root.as_os_str())
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", req.method().as_str())
        .env("PATH_INFO", req.path())
        .env("QUERY_STRING", req.query_string())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // (No Content-Encoding: actix has already inflated a gzip body.)
    for (header, var) in [("content-type", "CONTENT_TYPE"), ("git-protocol", "GIT_PROTOCOL")] {
        if let Some(v) = req.headers().get(header).and_then(|v| v.to_str().ok()) {
            cmd.env(var, v);
        }
    }
    let Ok(mut child) = cmd.spawn() else {
        return HttpResponse::InternalServerError().body("git http-backend did not start");
    };
    // The body goes in while the answer comes out, so neither pipe fills.
    let stdin = child.stdin.take();
    let write = async move {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&body).await;
        }
    };
    let (_, out) = tokio::join!(write, child.wait_with_output());
    match out {
        Ok(out) if out.status.success() => cgi_response(&out.stdout),
        Ok(out) => HttpResponse::InternalServerError().body(out.stderr),
        Err(e) => HttpResponse::InternalServerError().body(format!("git http-backend: {e}")),
    }
}

/// An HTTP response from a CGI program's output: its header lines (with
/// `Status:`), a blank line, the body.
fn cgi_response(out: &[u8]) -> HttpResponse {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, gap)) = split else {
        return HttpResponse::BadGateway().body(out.to_vec());
    };
    let head = String::from_utf8_lossy(&out[..end]);
    let mut status = actix_web::http::StatusCode::OK;
    let mut r = HttpResponse::Ok();
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else { continue };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("status") {
            if let Some(code) = v.split_whitespace().next().and_then(|c| c.parse().ok()) {
                status = actix_web::http::StatusCode::from_u16(code).unwrap_or(status);
            }
        } else {
            r.append_header((k.to_string(), v.to_string()));
        }
    }
    r.status(status);
    r.body(out[end + gap..].to_vec())
}

impl GitServer {
    /// Starts the server on a free loopback port.
    pub fn start() -> GitServer {
        let dir = tempfile::Builder::new().prefix("portico-git-").tempdir().unwrap();
        let root = dir.path().join("repos");
        std::fs::create_dir(&root).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = root.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(served.clone()))
                        .app_data(web::PayloadConfig::new(64 << 20))
                        .default_service(web::to(backend))
                })
                .workers(1)
                .listen(listener)
                .expect("listen")
                .run()
                .await
            })
        });
        GitServer { url, root, _dir: dir }
    }

    /// A new bare repository `name` (`<name>.git`, branch main) with a work
    /// tree beside it that pushes there; returns the work tree.
    pub fn repository(&self, name: &str) -> Repository {
        let bare = self.root.join(format!("{name}.git"));
        git(
            &self.root,
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        let work = self.root.join(format!("{name}-work"));
        git(&self.root, &["init", "-q", "-b", "main", work.to_str().unwrap()]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Repository {
            work,
            url: format!("{}/{name}.git", self.url),
        }
    }
}

/// A repository's work tree and its URL on the server.
pub struct Repository {
    pub work: PathBuf,
    pub url: String,
}

impl Repository {
    /// Tags the last commit `name` and pushes the tag.
    pub fn tag(&self, name: &str) {
        git(&self.work, &["tag", name]);
        git(&self.work, &["push", "-q", "origin", name]);
    }

    /// Writes `files` (path, text; `None` removes it), commits everything
    /// with `message` and pushes to main; returns the commit.
    pub fn commit(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        for (path, text) in files {
            let p = self.work.join(path);
            match text {
                Some(t) => {
                    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                    std::fs::write(&p, t).unwrap();
                }
                None => {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "--allow-empty", "-m", message]);
        git(&self.work, &["push", "-q", "origin", "main"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }
}
