//! Static files: the stylesheet, the tab icon, the branding stylesheet made from the
//! configuration, the page scripts (no inline script: CSP), and the terminal's
//! npm packages (`@xterm/xterm`, `@xterm/addon-fit`) from the assets directory
//! — a fixed list of files, never a path from the request.

use actix_web::{HttpResponse, web};

use super::{config::Branding, state::State};

/// The stylesheets, scripts and vendored files.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/portico.css", web::get().to(css))
        .route("/static/branding.css", web::get().to(branding))
        .route("/static/live.js", web::get().to(live_js))
        .route("/static/theme.js", web::get().to(theme_js))
        .route("/static/logs.js", web::get().to(logs_js))
        .route("/static/terminal.js", web::get().to(terminal_js))
        .route("/favicon.ico", web::get().to(favicon))
        .route("/vendor/{file}", web::get().to(vendor));
}

/// The files under `/vendor/` and where each lives in the assets directory.
pub const VENDOR: &[(&str, &str, &str)] = &[
    ("xterm.js", "@xterm/xterm/lib/xterm.js", "text/javascript"),
    ("xterm.css", "@xterm/xterm/css/xterm.css", "text/css"),
    ("addon-fit.js", "@xterm/addon-fit/lib/addon-fit.js", "text/javascript"),
];

fn text(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "public, max-age=300"))
        .body(body)
}

/// `/static/portico.css`.
pub async fn css() -> HttpResponse {
    text("text/css", include_str!("../../ui/static/portico.css"))
}

/// `/static/live.js`: live status, time left and warnings.
pub async fn live_js() -> HttpResponse {
    text("text/javascript", include_str!("../../ui/static/live.js"))
}

/// `/static/logs.js`: following a container's log.
pub async fn logs_js() -> HttpResponse {
    text("text/javascript", include_str!("../../ui/static/logs.js"))
}

/// `/static/theme.js`: the colour theme the user chose.
pub async fn theme_js() -> HttpResponse {
    text("text/javascript", include_str!("../../ui/static/theme.js"))
}

/// `/static/terminal.js`: the terminal page.
pub async fn terminal_js() -> HttpResponse {
    text("text/javascript", include_str!("../../ui/static/terminal.js"))
}

/// `/favicon.ico`: the tab icon (SVG, which browsers take at this path too).
pub async fn favicon() -> HttpResponse {
    text("image/svg+xml", include_str!("../../ui/static/favicon.svg"))
}

/// The colours of the configuration as CSS custom properties (checked as
/// `#rrggbb` when the configuration loads, so nothing else reaches the CSS).
pub fn branding_css(b: &Branding) -> String {
    // Each theme's colour where that theme shows: chosen with the theme
    // button (data-theme), or the system's when none is chosen.
    let mut css = String::new();
    if let Some(c) = &b.accent_color {
        css.push_str(&format!(
            "@media not (prefers-color-scheme: dark) {{ :root:not([data-theme=\"dark\"]) {{ --accent: {c}; }} }}\n\
             :root[data-theme=\"light\"] {{ --accent: {c}; }}\n"
        ));
    }
    if let Some(c) = &b.accent_color_dark {
        css.push_str(&format!(
            "@media (prefers-color-scheme: dark) {{ :root:not([data-theme=\"light\"]) {{ --accent: {c}; }} }}\n\
             :root[data-theme=\"dark\"] {{ --accent: {c}; }}\n"
        ));
    }
    css
}

/// `/static/branding.css`.
pub async fn branding(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(branding_css(&state.cfg.branding))
}

/// `/vendor/{file}`: one of [`VENDOR`], read from the assets directory.
pub async fn vendor(state: State, file: web::Path<String>) -> HttpResponse {
    let Some((_, rel, content_type)) = VENDOR.iter().find(|(name, _, _)| *name == file.as_str()) else {
        return HttpResponse::NotFound().body("no such file");
    };
    let path = state.cfg.assets_dir.join(rel);
    match tokio::fs::read(&path).await {
        Ok(bytes) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("cache-control", "public, max-age=3600"))
            .body(bytes),
        Err(e) => HttpResponse::NotFound().body(format!(
            "{} is missing ({e}): install the dashboard's npm packages with `npm ci --prefix ui` and set assetsDir",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branding_becomes_css_custom_properties() {
        let b = Branding {
            logo_url: None,
            accent_color: Some("#112233".into()),
            accent_color_dark: Some("#445566".into()),
        };
        let css = branding_css(&b);
        assert!(css.contains(
            r#"@media not (prefers-color-scheme: dark) { :root:not([data-theme="dark"]) { --accent: #112233; } }"#
        ));
        assert!(css.contains(r#":root[data-theme="light"] { --accent: #112233; }"#));
        assert!(css.contains(
            r#"@media (prefers-color-scheme: dark) { :root:not([data-theme="light"]) { --accent: #445566; } }"#
        ));
        assert!(
            css.contains(r#":root[data-theme="dark"] { --accent: #445566; }"#),
            "{css}"
        );
        assert_eq!(branding_css(&Branding::default()), "");
    }
}
