//! The HTML pages: the sign-in form, error pages, the home page. Plain HTML
//! forms that work without JavaScript; every value shown is escaped.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::Shared;

/// `text` with the five HTML special characters escaped.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A whole page around `main` (already escaped HTML).
fn layout(title: &str, main: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · atlogin</title>\n<link rel=\"stylesheet\" href=\"/atlogin.css\">\n</head>\n\
         <body>\n<main>\n{main}\n</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// A page that must not be cached: it carries a form token or a result.
pub(super) fn private_page(status: StatusCode, title: &str, main: &str) -> Response {
    let mut response = (status, Html(layout(title, main))).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What the sign-in form shows.
pub(super) struct SignInForm<'a> {
    /// The authorization request it belongs to.
    pub request: &'a str,
    /// Its CSRF token.
    pub csrf: &'a str,
    /// The relying party, named for the person.
    pub client_id: &'a str,
    /// What was typed before, to show again.
    pub handle: &'a str,
    /// Why the last try failed.
    pub error: Option<&'a str>,
}

/// The sign-in form.
pub(super) fn sign_in(status: StatusCode, form: &SignInForm<'_>) -> Response {
    let (invalid, alert) = match form.error {
        Some(error) => (
            " aria-invalid=\"true\" aria-describedby=\"handle-error handle-help\"",
            format!(
                "<p id=\"handle-error\" class=\"error\" role=\"alert\">{}</p>\n",
                escape(error)
            ),
        ),
        None => (" aria-describedby=\"handle-help\"", String::new()),
    };
    let main = format!(
        "<h1>Sign in with your Bluesky account</h1>\n\
         <p><strong>{client}</strong> asks who you are. You sign in at your own \
         provider (your PDS); atlogin only learns your account's identity.</p>\n\
         <form method=\"post\" action=\"/authorize\">\n{alert}\
         <label for=\"handle\">Your handle</label>\n\
         <input id=\"handle\" name=\"handle\" type=\"text\" value=\"{handle}\" required \
         autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" \
         autofocus inputmode=\"url\"{invalid}>\n\
         <p id=\"handle-help\" class=\"help\">For example <code>alice.bsky.social</code>, \
         or your DID.</p>\n\
         <input type=\"hidden\" name=\"request\" value=\"{request}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\">Continue</button>\n</form>",
        client = escape(form.client_id),
        handle = escape(form.handle),
        request = escape(form.request),
        csrf = escape(form.csrf),
    );
    private_page(status, "Sign in", &main)
}

/// An error page: what went wrong, and what to try.
pub(super) fn error(status: StatusCode, what: &str, try_next: &str) -> Response {
    let main = format!(
        "<h1>Sign-in failed</h1>\n<p class=\"error\" role=\"alert\">{}</p>\n<p>{}</p>",
        escape(what),
        escape(try_next)
    );
    private_page(status, "Sign-in failed", &main)
}

/// An error page with a link back to the relying party, carrying the error.
pub(super) fn error_with_return(
    status: StatusCode,
    what: &str,
    back: &str,
    client_id: &str,
) -> Response {
    let main = format!(
        "<h1>Sign-in failed</h1>\n<p class=\"error\" role=\"alert\">{}</p>\n\
         <p>Try again in a moment. <a href=\"{}\">Return to {}</a> to start over from there.</p>",
        escape(what),
        escape(back),
        escape(client_id)
    );
    private_page(status, "Sign-in failed", &main)
}

/// `GET /`.
pub(super) async fn home(State(app): State<Shared>) -> Response {
    let demo = if app.demo.is_some() {
        "<p><a href=\"/demo\">Try a sign-in</a> with the built-in demo application.</p>"
    } else {
        ""
    };
    let main = format!(
        "<h1>atlogin</h1>\n<p>Sign in to Matrix with a Bluesky / AT Protocol \
         identity. This server is an OpenID Connect provider; its configuration is at \
         <a href=\"/.well-known/openid-configuration\">/.well-known/openid-configuration</a>.</p>\n{demo}"
    );
    Html(layout("atlogin", &main)).into_response()
}

/// Any path not served.
pub(super) async fn not_found() -> Response {
    let main = "<h1>Not found</h1>\n<p>There is no page here. \
                Sign-ins start from the application you want to use.</p>";
    (StatusCode::NOT_FOUND, Html(layout("Not found", main))).into_response()
}

/// `GET /atlogin.css`: the one stylesheet, so the pages need no inline style.
pub(super) async fn stylesheet() -> Response {
    const CSS: &str = "body{font-family:system-ui,sans-serif;line-height:1.5;margin:0;\
        background:#f6f7f9;color:#14171a}main{max-width:32rem;margin:3rem auto;padding:2rem;\
        background:#fff;border-radius:.75rem;box-shadow:0 1px 4px #0002}\
        h1{font-size:1.4rem;margin-top:0}label{display:block;font-weight:600;margin-top:1rem}\
        input[type=text]{width:100%;box-sizing:border-box;font-size:1.1rem;padding:.5rem;\
        border:1px solid #888;border-radius:.4rem}input[aria-invalid=true]{border-color:#b00020}\
        .help{color:#555;font-size:.9rem;margin:.25rem 0 1rem}.error{color:#b00020;font-weight:600}\
        button{font-size:1.05rem;padding:.55rem 1.4rem;border:0;border-radius:.4rem;\
        background:#0560ff;color:#fff;cursor:pointer}button:focus,input:focus,a:focus\
        {outline:3px solid #ffbf47;outline-offset:2px}dl{display:grid;grid-template-columns:auto 1fr;\
        gap:.25rem 1rem}dt{font-weight:600}dd{margin:0;word-break:break-all}";
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}
