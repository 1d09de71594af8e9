//! One error type for a request a page cannot serve: the status and the
//! message page already rendered with the layout, so handlers return
//! [`Page`] and use `?`; actix turns the error into the response.

use std::fmt;

use actix_web::{HttpResponse, ResponseError, http::StatusCode};

/// A request that cannot be served, as the page that says why.
pub struct PageError {
    status: StatusCode,
    html: String,
}

/// What a page handler returns.
pub type Page = Result<HttpResponse, PageError>;

impl PageError {
    /// The page `html` answering with `status`.
    pub fn new(status: StatusCode, html: String) -> PageError {
        PageError { status, html }
    }
}

impl fmt::Debug for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageError({})", self.status)
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the page answered {}", self.status)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .content_type("text/html; charset=utf-8")
            .body(self.html.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_is_the_page_with_its_status() {
        let e = PageError::new(StatusCode::FORBIDDEN, "<p>no</p>".into());
        let r = e.error_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers().get("content-type").unwrap(), "text/html; charset=utf-8");
        assert_eq!(e.to_string(), "the page answered 403 Forbidden");
    }
}
