//! The sign-in: a relying party's authorization request, the handle form, the
//! atproto login at the person's PDS, and the code back to the relying party.
//!
//! Two rows carry a sign-in across the browser's round trips, so any replica
//! can serve any step: the checked authorization request (by a random id, with
//! the form's CSRF token), and the upstream login (by its `state`). Both name
//! the browser that started them by the hash of a cookie, so a link into the
//! middle of someone else's sign-in leads nowhere.

use std::time::Duration;

use atlogin_core::client::{
    CallbackParams, ClientError, LoginRequest, PendingLogin, RevokeToken, Scope,
};
use atlogin_core::provider::{
    AuthenticatedUser, AuthorizeError, PendingAuthorization, Prompt, deny, issue_code, storage_key,
};
use atlogin_core::time::UnixTime;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::pages::{self, SignInForm};
use super::{Peer, Shared, now, random_token, rng, stopwatch};
use crate::store::{Batch, Kind, Put};

/// A relying party's request, waiting for the person's handle.
#[derive(Serialize, Deserialize)]
struct AuthorizationRecord {
    pending: PendingAuthorization,
    /// The form's CSRF token.
    csrf: String,
    /// The storage key of the browser cookie.
    browser: String,
}

/// A login waiting at the person's PDS.
#[derive(Serialize, Deserialize)]
struct LoginRecord {
    login: PendingLogin,
    /// The authorization request it serves.
    authorization: String,
    /// The storage key of the browser cookie.
    browser: String,
    /// When the person sent the form.
    started_at: UnixTime,
    /// Whether the relying party asked for the email address.
    email: bool,
}

/// The upstream scope that lets atlogin read the account's email address.
const EMAIL_SCOPE: &str = "atproto transition:email";

/// A `303 See Other` to `location`.
pub(super) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn server_error() -> Response {
    pages::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "atlogin could not finish this step because of an internal fault.",
        "Try again in a moment. If it keeps happening, the administrator will find the cause in atlogin's log.",
    )
}

fn too_many() -> Response {
    let mut response = pages::error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-ins were started from your network in the last minute.",
        "Wait a minute, then try again.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

fn start_again(what: &str) -> Response {
    pages::error(
        StatusCode::BAD_REQUEST,
        what,
        "Go back to the application you were signing in to and start the sign-in again.",
    )
}

/// `GET /authorize`: checks the relying party's request, then shows the
/// handle form, or goes straight to the PDS when `login_hint` names the account.
pub(super) async fn authorize(
    State(app): State<Shared>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = now();
    let pending = match atlogin_core::provider::authorize(
        &app.provider(),
        query.as_deref().unwrap_or_default(),
        now,
    ) {
        Ok(pending) => pending,
        Err(AuthorizeError::Page(error)) => {
            return pages::error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "The application's sign-in request is not valid: {}.",
                    error.description
                ),
                "Go back to the application and try again. If this keeps happening, its administrator should check how it is registered with atlogin.",
            );
        }
        Err(AuthorizeError::Redirect { url, .. }) => return redirect(url.as_str()),
        Err(_) => return server_error(),
    };
    let ip = app.client_ip(peer, &headers);
    if app.authorize_limiter.check_key(&ip).is_err() {
        return too_many();
    }
    // The cookie is set again on every request, so it lives as long as the
    // newest sign-in needs; an existing value is kept, so sign-ins in other
    // tabs go on.
    let browser = app.browser_cookie(&headers).unwrap_or_else(random_token);
    let id = random_token();
    let record = AuthorizationRecord {
        csrf: random_token(),
        browser: storage_key(&browser),
        pending,
    };
    let Ok(payload) = serde_json::to_string(&record) else {
        return server_error();
    };
    let expires_at = record.pending.expires_at;
    if let Err(error) = app
        .store
        .put(
            Put::new(Kind::Authorization, id.clone(), payload, expires_at),
            now,
        )
        .await
    {
        tracing::error!(%error, "cannot store an authorization request");
        return server_error();
    }
    let mut response = match record.pending.login_hint.clone() {
        Some(hint) => {
            if app.login_limiter.check_key(&ip).is_err() {
                too_many()
            } else {
                start_upstream(&app, &id, &record, &hint).await
            }
        }
        None => pages::sign_in(
            StatusCode::OK,
            &SignInForm {
                request: &id,
                csrf: &record.csrf,
                client_id: &record.pending.client_id,
                handle: "",
                error: None,
            },
        ),
    };
    let lifetime = Duration::from_secs(expires_at.as_secs().saturating_sub(now.as_secs()));
    response.headers_mut().append(
        header::SET_COOKIE,
        app.set_browser_cookie(&browser, lifetime),
    );
    response
}

/// The sign-in form's fields (no `Debug`: it holds the CSRF token).
#[derive(Default, Deserialize)]
#[serde(default)]
pub(super) struct StartForm {
    request: String,
    csrf: String,
    handle: String,
}

/// `POST /authorize`: the person typed their handle.
pub(super) async fn start(
    State(app): State<Shared>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    form: Result<axum::Form<StartForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(form)) = form else {
        return start_again(
            "The sign-in form arrived incomplete or in a form atlogin cannot read.",
        );
    };
    let ip = app.client_ip(peer, &headers);
    if app.login_limiter.check_key(&ip).is_err() {
        return too_many();
    }
    let record = match app
        .store
        .get(Kind::Authorization, &form.request, now())
        .await
    {
        Ok(Some(row)) => match serde_json::from_str::<AuthorizationRecord>(&row.payload) {
            Ok(record) => record,
            Err(_) => return server_error(),
        },
        Ok(None) => return start_again("This sign-in form has expired."),
        Err(error) => {
            tracing::error!(%error, "cannot read an authorization request");
            return server_error();
        }
    };
    // Hashing both sides first makes the comparisons take the same time
    // wherever they differ.
    if storage_key(&form.csrf) != storage_key(&record.csrf) {
        return start_again("This sign-in form is not the one atlogin sent.");
    }
    let same_browser = app
        .browser_cookie(&headers)
        .is_some_and(|cookie| storage_key(&cookie) == record.browser);
    if !same_browser {
        return start_again(
            "This sign-in was started in another browser, or your browser blocked atlogin's cookie.",
        );
    }
    let typed = form.handle.trim();
    if typed.is_empty() {
        return form_again(
            &form.request,
            &record,
            typed,
            StatusCode::BAD_REQUEST,
            "Type your handle.",
        );
    }
    start_upstream(&app, &form.request, &record, typed).await
}

fn form_again(
    id: &str,
    record: &AuthorizationRecord,
    typed: &str,
    status: StatusCode,
    error: &str,
) -> Response {
    pages::sign_in(
        status,
        &SignInForm {
            request: id,
            csrf: &record.csrf,
            client_id: &record.pending.client_id,
            handle: typed,
            error: Some(error),
        },
    )
}

/// A short, fixed word for a failure, for metrics.
fn reason(error: &ClientError) -> &'static str {
    match error {
        ClientError::Identity(_) => "identity",
        ClientError::Discovery(_) => "discovery",
        ClientError::Transport { .. } | ClientError::Status { .. } => "unreachable",
        ClientError::AuthorizationDenied { .. } => "denied",
        ClientError::ServerRefused { .. } => "refused",
        ClientError::IssuerProof { .. }
        | ClientError::IssuerMismatch { .. }
        | ClientError::SubjectMismatch { .. } => "issuer_mismatch",
        ClientError::Expired => "expired",
        ClientError::InvalidCallback(_) | ClientError::StateMismatch => "bad_callback",
        _ => "protocol",
    }
}

/// What to tell the person about a failure, and the status to send.
fn explain(error: &ClientError, typed: &str) -> (StatusCode, String) {
    match error {
        ClientError::Identity(atlogin_core::identity::IdentityError::HandleMismatch {
            did,
            ..
        }) => (
            StatusCode::BAD_REQUEST,
            format!(
                "“{typed}” is not a verified handle: it points to the account {did}, but that account does not name it as its handle. If the handle is yours, check its DNS record or its .well-known file; or sign in with your account's own handle or DID."
            ),
        ),
        ClientError::Identity(why) => (
            StatusCode::BAD_REQUEST,
            format!(
                "No account was found for “{typed}” ({why}). Check the spelling: a handle looks like alice.bsky.social."
            ),
        ),
        ClientError::Discovery(_) | ClientError::Transport { .. } | ClientError::Status { .. } => (
            StatusCode::BAD_GATEWAY,
            format!(
                "Your PDS or its sign-in server could not be reached properly ({error}). Try again in a moment; if it keeps failing, your PDS may be down."
            ),
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            format!("Your PDS's sign-in server did not accept the sign-in ({error})."),
        ),
    }
}

/// Starts the atproto login for `typed` and sends the browser to the PDS; on
/// failure, shows the form again with what went wrong.
async fn start_upstream(
    app: &Shared,
    id: &str,
    record: &AuthorizationRecord,
    typed: &str,
) -> Response {
    let mut request = match LoginRequest::parse(typed, app.mode) {
        Ok(request) => request,
        Err(why) => {
            app.metrics.login_failed("input");
            return form_again(
                id,
                record,
                typed,
                StatusCode::BAD_REQUEST,
                &format!(
                    "“{typed}” is not a handle or a DID ({why}). A handle looks like alice.bsky.social."
                ),
            );
        }
    };
    // The relying party wants a sign-in made now: ask the PDS not to reuse
    // its own session (max_age too, since atlogin cannot know that session's age).
    if record.pending.prompt == Prompt::Login || record.pending.max_age.is_some() {
        request = request.with_fresh_sign_in();
    }
    let email = record.pending.scope.contains("email");
    if email && app.client().scope().contains("transition:email") {
        match Scope::parse(EMAIL_SCOPE).map(|scope| request.clone().with_scope(scope)) {
            Ok(Ok(with_email)) => request = with_email,
            _ => return server_error(),
        }
    }
    let started = stopwatch();
    let result = app.driver.start_login(request, app.client()).await;
    app.metrics.upstream("start", started);
    let login = match result {
        Ok(login) => login,
        Err(error) => {
            app.metrics.login_failed(reason(&error));
            tracing::info!(%error, "a sign-in could not start");
            let (status, message) = explain(&error, typed);
            return form_again(id, record, typed, status, &message);
        }
    };
    let now = now();
    let key = storage_key(login.pending.state.secret());
    let expires_at = login.pending.expires_at;
    let row = LoginRecord {
        login: login.pending,
        authorization: id.to_owned(),
        browser: record.browser.clone(),
        started_at: now,
        email,
    };
    let Ok(payload) = serde_json::to_string(&row) else {
        return server_error();
    };
    if let Err(error) = app
        .store
        .put(Put::new(Kind::Login, key, payload, expires_at), now)
        .await
    {
        tracing::error!(%error, "cannot store a login");
        return server_error();
    }
    app.metrics.logins_started.inc();
    redirect(login.redirect_url.as_str())
}

/// `GET /atproto/callback`: the PDS sent the person back.
pub(super) async fn callback(
    State(app): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(params) = CallbackParams::parse(query.as_deref().unwrap_or_default()) else {
        app.metrics.login_failed("bad_callback");
        return start_again("The answer from your PDS is malformed.");
    };
    let Some(state) = params.state.as_ref() else {
        app.metrics.login_failed("bad_callback");
        return start_again("The answer from your PDS does not say which sign-in it belongs to.");
    };
    let now = now();
    // Taken, not read: a callback is used once, whatever happens next.
    let row = match app
        .store
        .take(Kind::Login, &storage_key(state.secret()), now)
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => {
            app.metrics.login_failed("unknown_state");
            return start_again("This sign-in is unknown, has expired, or was already finished.");
        }
        Err(error) => {
            tracing::error!(%error, "cannot read a login");
            return server_error();
        }
    };
    let Ok(record) = serde_json::from_str::<LoginRecord>(&row.payload) else {
        return server_error();
    };
    let same_browser = app
        .browser_cookie(&headers)
        .is_some_and(|cookie| storage_key(&cookie) == record.browser);
    if !same_browser {
        app.metrics.login_failed("other_browser");
        return start_again(
            "This sign-in was started in another browser, or your browser blocked atlogin's cookie.",
        );
    }
    let authorization = match app
        .store
        .take(Kind::Authorization, &record.authorization, now)
        .await
    {
        Ok(Some(row)) => match serde_json::from_str::<AuthorizationRecord>(&row.payload) {
            Ok(authorization) => authorization,
            Err(_) => return server_error(),
        },
        Ok(None) => {
            app.metrics.login_failed("expired");
            return start_again(
                "The application's sign-in request has expired or was already answered.",
            );
        }
        Err(error) => {
            tracing::error!(%error, "cannot read an authorization request");
            return server_error();
        }
    };
    finish(&app, record, authorization.pending, &params, now).await
}

/// Completes the atproto login and sends the browser back to the relying
/// party with a code (or with `access_denied`).
async fn finish(
    app: &Shared,
    record: LoginRecord,
    pending: PendingAuthorization,
    params: &CallbackParams,
    now: UnixTime,
) -> Response {
    let started = stopwatch();
    let result = app
        .driver
        .complete_login(record.login, params, app.client())
        .await;
    app.metrics.upstream("complete", started);
    let verified = match result {
        Ok(verified) => verified,
        Err(ClientError::AuthorizationDenied { error, .. }) if error == "access_denied" => {
            app.metrics.login_failed("denied");
            tracing::info!(client = %pending.client_id, "the person declined at their PDS");
            return match deny(
                &app.provider(),
                &pending,
                "access_denied",
                "the sign-in was declined at the PDS",
            ) {
                AuthorizeError::Redirect { url, .. } => redirect(url.as_str()),
                _ => server_error(),
            };
        }
        Err(error) => {
            app.metrics.login_failed(reason(&error));
            tracing::info!(%error, client = %pending.client_id, "a sign-in failed at the callback");
            return callback_failed(app, &pending, &error);
        }
    };

    let (profile, email) = read_account(app, &verified, record.email).await;
    revoke_upstream(app, &verified);

    let user = AuthenticatedUser::new(verified.did.clone(), now)
        .with_handle(verified.handle.clone())
        .with_profile(profile.display_name, profile.avatar)
        .with_confirmed_email(email);
    let (url, code, grant) =
        match issue_code(&app.provider(), &pending, user, super::now(), &mut rng()) {
            Ok(issued) => issued,
            Err(AuthorizeError::Redirect { url, .. }) => {
                app.metrics.login_failed("too_slow");
                return redirect(url.as_str());
            }
            Err(_) => return server_error(),
        };
    // The code, and the session it opens at the relying party, which
    // `atlogin logout` and a replay end with a back-channel logout token.
    let session = crate::logout::Session {
        client_id: pending.client_id.clone(),
        family: grant.family.clone(),
    };
    let (Ok(code_payload), Ok(session_payload)) = (
        serde_json::to_string(&grant),
        serde_json::to_string(&session),
    ) else {
        return server_error();
    };
    let did = verified.did.as_str();
    let batch = Batch {
        puts: vec![
            Put::new(
                Kind::Code,
                storage_key(code.secret()),
                code_payload,
                grant.expires_at,
            )
            .for_subject(did),
            Put::new(
                Kind::Session,
                grant.family.clone(),
                session_payload,
                now.saturating_add(app.provider().lifetimes().refresh_token),
            )
            .in_family(grant.family.clone())
            .for_subject(did),
        ],
        ..Batch::default()
    };
    if let Err(error) = app.store.commit(batch, now).await {
        tracing::error!(%error, "cannot store a code");
        return server_error();
    }
    app.metrics.logins_completed.inc();
    let seconds = now.as_secs().saturating_sub(record.started_at.as_secs());
    tracing::info!(
        did = %verified.did,
        handle = verified.handle.as_ref().map_or("(unverified)", |h| h.as_str()),
        issuer = %verified.issuer,
        client = %pending.client_id,
        seconds,
        "sign-in finished"
    );
    redirect(url.as_str())
}

/// The page for a sign-in that failed after the PDS sent the person back: what
/// happened, and a link that takes the error back to the relying party (RFC 6749
/// §4.1.2.1), whose request is used up.
fn callback_failed(app: &Shared, pending: &PendingAuthorization, error: &ClientError) -> Response {
    let (status, what, code) = match error {
        ClientError::Discovery(_) | ClientError::Transport { .. } | ClientError::Status { .. } => (
            StatusCode::BAD_GATEWAY,
            format!(
                "Your PDS's sign-in server could not be reached to finish the sign-in ({error})."
            ),
            "temporarily_unavailable",
        ),
        ClientError::IssuerProof { .. }
        | ClientError::IssuerMismatch { .. }
        | ClientError::SubjectMismatch { .. } => (
            StatusCode::BAD_GATEWAY,
            format!(
                "The sign-in server that answered is not the one your account names, so atlogin cannot vouch for it ({error})."
            ),
            "access_denied",
        ),
        ClientError::Expired => (
            StatusCode::BAD_REQUEST,
            "The sign-in took too long.".to_owned(),
            "access_denied",
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            format!("Your PDS's sign-in server did not complete the sign-in ({error})."),
            "access_denied",
        ),
    };
    match deny(
        &app.provider(),
        pending,
        code,
        "the sign-in at the PDS did not complete",
    ) {
        AuthorizeError::Redirect { url, .. } => {
            pages::error_with_return(status, &what, url.as_str(), &pending.client_id)
        }
        _ => pages::error(
            status,
            &what,
            "Go back to the application and start the sign-in again.",
        ),
    }
}

/// The public profile and, when the relying party asked for it and the PDS
/// says it is confirmed, the email address. Neither is required to sign in.
async fn read_account(
    app: &Shared,
    verified: &atlogin_core::client::VerifiedLogin,
    wants_email: bool,
) -> (atlogin_core::client::Profile, Option<String>) {
    let started = stopwatch();
    let profile = match app.driver.fetch_profile(&verified.did, &verified.pds).await {
        Ok(profile) => profile,
        Err(error) => {
            tracing::info!(%error, did = %verified.did, "no profile: signing in without a display name");
            atlogin_core::client::Profile::default()
        }
    };
    app.metrics.upstream("profile", started);
    let mut email = None;
    if wants_email && verified.scope.contains("transition:email") {
        let started = stopwatch();
        match app
            .driver
            .fetch_email(
                verified.session.clone(),
                verified.tokens.access_token.clone(),
                &verified.did,
                &verified.pds,
                app.client(),
            )
            .await
        {
            Ok(account) if account.confirmed => email = account.email,
            Ok(_) => {}
            Err(error) => {
                tracing::info!(%error, did = %verified.did, "the email address could not be read");
            }
        }
        app.metrics.upstream("email", started);
    }
    (profile, email)
}

/// Revokes the upstream tokens in the background: atlogin needed them only to
/// prove the identity and read the profile and email.
fn revoke_upstream(app: &Shared, verified: &atlogin_core::client::VerifiedLogin) {
    let token = match &verified.tokens.refresh_token {
        Some(refresh) => RevokeToken::Refresh(refresh.clone()),
        None => RevokeToken::Access(verified.tokens.access_token.clone()),
    };
    let app = app.clone();
    let session = verified.session.clone();
    let did = verified.did.clone();
    app.clone().tasks.spawn(async move {
        let started = stopwatch();
        let result = app.driver.revoke(session, token, app.client()).await;
        app.metrics.upstream("revoke", started);
        match result {
            Ok(()) => tracing::debug!(%did, "upstream tokens revoked"),
            Err(error) => tracing::info!(%error, %did, "the upstream tokens could not be revoked"),
        }
    });
}
