//! The OpenID Connect endpoints and the atproto client's documents. Core
//! decides every answer; these handlers read and write the store around it.

use atlogin_core::provider::PresentedAuth;
use atlogin_core::provider::{
    AccessGrant, AuthenticatedClient, CodeGrant, Grant, OAuthError, RefreshGrant,
    RevocationRequest, StoreChanges, Stored, authenticate_client, bearer_token, discovery_document,
    parse_client_auth, parse_token_request, storage_key,
};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Peer, Shared, now, rng};
use crate::metrics::Outcome;
use crate::store::{Batch, Claim, Kind, Put};

/// Core's answer as an axum response.
fn respond(response: http::Response<Vec<u8>>) -> Response {
    response.map(Body::from)
}

fn oauth_error(error: &OAuthError) -> Response {
    respond(error.to_response())
}

/// Whether the body is declared a form, as RFC 6749 §3.2 requires.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// `GET /.well-known/openid-configuration`.
pub(super) async fn discovery(State(app): State<Shared>) -> Response {
    let mut response = Json(discovery_document(&app.provider())).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `GET /jwks`.
pub(super) async fn jwks(State(app): State<Shared>) -> Response {
    let mut response = Json(app.provider().jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// The metrics label of a token endpoint answer.
fn outcome_label(response: &http::Response<Vec<u8>>) -> &'static str {
    if response.status().is_success() {
        return "ok";
    }
    let error = serde_json::from_slice::<serde_json::Value>(response.body())
        .ok()
        .and_then(|body| {
            body.get("error")
                .and_then(|e| e.as_str())
                .map(str::to_owned)
        });
    match error.as_deref() {
        Some("invalid_request") => "invalid_request",
        Some("invalid_client") => "invalid_client",
        Some("invalid_grant") => "invalid_grant",
        Some("unauthorized_client") => "unauthorized_client",
        Some("unsupported_grant_type") => "unsupported_grant_type",
        Some("invalid_scope") => "invalid_scope",
        Some("server_error") => "server_error",
        _ => "other",
    }
}

/// Remembers a client assertion's `jti` until the assertion expires, refusing
/// one already seen (RFC 7523 §3, item 7).
async fn check_assertion_replay(
    app: &Shared,
    client: &AuthenticatedClient<'_>,
    basic: bool,
) -> Result<(), Response> {
    let Some((jti, expires_at)) = &client.assertion_jti else {
        return Ok(());
    };
    let key = storage_key(&format!("{}\n{jti}", client.client.client_id));
    match app
        .store
        .put(
            Put::new(Kind::AssertionJti, key, "{}".to_owned(), *expires_at),
            now(),
        )
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(oauth_error(&OAuthError::invalid_client(
            "the client assertion was already used",
            basic,
        ))),
        Err(error) => {
            tracing::error!(%error, "cannot record a client assertion");
            Err(oauth_error(&OAuthError::server_error()))
        }
    }
}

/// `POST /token`.
pub(super) async fn token(
    State(app): State<Shared>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let response = token_response(&app, peer, &headers, &body).await;
    app.metrics
        .token_requests
        .get_or_create(&Outcome {
            outcome: outcome_label(&response),
        })
        .inc();
    respond(response)
}

async fn token_response(
    app: &Shared,
    peer: std::net::SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> http::Response<Vec<u8>> {
    let ip = app.client_ip(peer, headers);
    if app.token_limiter.check_key(&ip).is_err() {
        let mut response = http::Response::new(
            br#"{"error":"temporarily_unavailable","error_description":"too many requests; retry in a minute"}"#.to_vec(),
        );
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return response;
    }
    if !is_form(headers) {
        return OAuthError::invalid_request("the body must be application/x-www-form-urlencoded")
            .to_response();
    }
    let request = match parse_token_request(body, authorization(headers)) {
        Ok(request) => request,
        Err(error) => return error.to_response(),
    };
    let now = now();
    let provider = app.provider();
    let client = match authenticate_client(&provider, &request.auth, now, app.crypto) {
        Ok(client) => client,
        Err(error) => return error.to_response(),
    };
    if let Err(response) = check_assertion_replay(app, &client, request.used_basic()).await {
        return into_http(response).await;
    }
    let key = request.lookup_key();
    let Ok(stored) = read_stored(app, &request.grant, &key).await else {
        return OAuthError::server_error().to_response();
    };
    // Who the stored grant was for: a replay ends that session, whoever
    // presented it.
    let session = match &stored {
        Stored::Code(grant) => grant
            .as_ref()
            .map(|g| (g.client_id.clone(), g.user.did.clone(), g.family.clone())),
        Stored::Refresh(grant) => grant
            .as_ref()
            .map(|g| (g.client_id.clone(), g.user.did.clone(), g.family.clone())),
    };
    let outcome =
        atlogin_core::provider::token(&provider, &client, &request, stored, now, &mut rng());
    let replayed = outcome.changes.revoke_family.is_some();
    let family = outcome
        .changes
        .code
        .as_ref()
        .map(|(_, grant)| grant.family.clone())
        .or_else(|| {
            outcome
                .changes
                .used_refresh
                .as_ref()
                .map(|(_, grant)| grant.family.clone())
        });
    let Ok(batch) = batch_of(outcome.changes) else {
        return OAuthError::server_error().to_response();
    };
    match app.store.commit(batch, now).await {
        Ok(true) => {
            if replayed && let Some(session) = session {
                tracing::warn!(client = %session.0, did = %session.1, "a used code or refresh token came back: its session is ended");
                log_out(app, session);
            }
            outcome.response
        }
        Ok(false) => {
            // Another request redeemed the same code or refresh token first:
            // treat this one as the replay it is (RFC 9700 §4.14.2).
            if let Some(family) = family {
                let revoke = Batch {
                    revoke_families: vec![family],
                    ..Batch::default()
                };
                if let Err(error) = app.store.commit(revoke, now).await {
                    tracing::error!(%error, "cannot revoke a replayed grant's tokens");
                }
            }
            if let Some(session) = session {
                tracing::warn!(client = %session.0, did = %session.1, "two requests redeemed one grant: its session is ended");
                log_out(app, session);
            }
            OAuthError::invalid_grant("the grant was already used").to_response()
        }
        Err(error) => {
            tracing::error!(%error, "cannot store issued tokens");
            OAuthError::server_error().to_response()
        }
    }
}

/// Tells the relying party, in the background, that its session `(client,
/// did, family)` has ended: its code or refresh token was replayed, so its
/// tokens are gone.
fn log_out(app: &Shared, session: (String, atlogin_core::identity::Did, String)) {
    let (client_id, subject, family) = session;
    let Some(client) = app.provider().client(&client_id).cloned() else {
        return;
    };
    if client.backchannel_logout_uri.is_none() {
        return;
    }
    let app = app.clone();
    app.clone().tasks.spawn(async move {
        match app
            .logout
            .send(&app.provider(), &client, &subject, &family, now())
            .await
        {
            Ok(_) => {
                tracing::info!(client = %client.client_id, did = %subject, "back-channel logout sent after a replay");
            }
            Err(error) => {
                tracing::warn!(%error, client = %client.client_id, "back-channel logout failed");
            }
        }
    });
}

/// The stored grant a token request names, marked used when its row is.
async fn read_stored(app: &Shared, grant: &Grant, key: &str) -> Result<Stored, ()> {
    Ok(match grant {
        Grant::AuthorizationCode { .. } => Stored::Code(
            read::<CodeGrant>(app, Kind::Code, key)
                .await?
                .map(|(mut grant, used)| {
                    grant.redeemed |= used;
                    grant
                }),
        ),
        Grant::RefreshToken { .. } => {
            Stored::Refresh(read::<RefreshGrant>(app, Kind::Refresh, key).await?.map(
                |(mut grant, used)| {
                    grant.rotated |= used;
                    grant
                },
            ))
        }
        // Core parses no other grant; should it one day, it is unknown here.
        _ => Stored::Code(None),
    })
}

async fn into_http(response: Response) -> http::Response<Vec<u8>> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    http::Response::from_parts(parts, bytes.to_vec())
}

/// A stored grant and whether it was used.
async fn read<T: serde::de::DeserializeOwned>(
    app: &Shared,
    kind: Kind,
    key: &str,
) -> Result<Option<(T, bool)>, ()> {
    match app.store.get(kind, key, now()).await {
        Ok(Some(row)) => match serde_json::from_str::<T>(&row.payload) {
            Ok(grant) => Ok(Some((grant, row.used))),
            Err(error) => {
                tracing::error!(%error, "a stored grant does not parse");
                Err(())
            }
        },
        Ok(None) => Ok(None),
        Err(error) => {
            tracing::error!(%error, "cannot read a grant");
            Err(())
        }
    }
}

/// Core's store changes as one batch.
fn batch_of(changes: StoreChanges) -> Result<Batch, serde_json::Error> {
    let mut batch = Batch::default();
    // A redeemed code is kept as long as the tokens it gave live, so that its
    // replay is recognised for as long as there is something to revoke.
    let tokens_live_until = [
        changes.access.as_ref().map(|(_, g)| g.expires_at),
        changes.refresh.as_ref().map(|(_, g)| g.expires_at),
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some((key, grant)) = changes.code {
        let keep_until = tokens_live_until.map_or(grant.expires_at, |t| t.max(grant.expires_at));
        batch.claim = Some(Claim {
            kind: Kind::Code,
            key,
            payload: serde_json::to_string(&grant)?,
            keep_until,
        });
    }
    if let Some((key, grant)) = changes.used_refresh {
        batch.claim = Some(Claim {
            kind: Kind::Refresh,
            key,
            payload: serde_json::to_string(&grant)?,
            keep_until: grant.expires_at,
        });
    }
    if let Some((key, grant)) = changes.access {
        let payload = serde_json::to_string(&grant)?;
        let subject = grant.user.did.as_str().to_owned();
        batch.puts.push(
            Put::new(Kind::Access, key, payload, grant.expires_at)
                .in_family(grant.family)
                .for_subject(subject),
        );
    }
    if let Some((key, grant)) = changes.refresh {
        let payload = serde_json::to_string(&grant)?;
        let subject = grant.user.did.as_str().to_owned();
        batch.puts.push(
            Put::new(Kind::Refresh, key, payload, grant.expires_at)
                .in_family(grant.family)
                .for_subject(subject),
        );
    }
    if let Some(family) = changes.revoke_family {
        batch.revoke_families.push(family);
    }
    Ok(batch)
}

/// `GET` or `POST /userinfo`.
pub(super) async fn userinfo(
    State(app): State<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = (method == Method::POST && is_form(&headers)).then_some(&body[..]);
    let token = match bearer_token(authorization(&headers), form) {
        Ok(token) => token,
        Err(error) => return oauth_error(&error),
    };
    let Ok(grant) = read::<AccessGrant>(&app, Kind::Access, &storage_key(token.secret())).await
    else {
        return oauth_error(&OAuthError::server_error());
    };
    match atlogin_core::provider::userinfo(grant.map(|(grant, _)| grant), now()) {
        Ok(response) => respond(response),
        Err(error) => oauth_error(&error),
    }
}

/// `POST /revoke` (RFC 7009).
pub(super) async fn revoke(State(app): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_form(&headers) {
        return oauth_error(&OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let auth = match parse_client_auth(&body, authorization(&headers)) {
        Ok(auth) => auth,
        Err(error) => return oauth_error(&error),
    };
    let provider = app.provider();
    let client = match authenticate_client(&provider, &auth, now(), app.crypto) {
        Ok(client) => client,
        Err(error) => return oauth_error(&error),
    };
    let basic = matches!(auth, PresentedAuth::Basic { .. });
    if let Err(response) = check_assertion_replay(&app, &client, basic).await {
        return response;
    }
    let request = match RevocationRequest::parse(&body) {
        Ok(request) => request,
        Err(error) => return oauth_error(&error),
    };
    let key = request.lookup_key();
    let (Ok(access), Ok(refresh)) = (
        read::<AccessGrant>(&app, Kind::Access, &key).await,
        read::<RefreshGrant>(&app, Kind::Refresh, &key).await,
    ) else {
        return oauth_error(&OAuthError::server_error());
    };
    let (response, revocation) = match atlogin_core::provider::revoke(
        &client,
        &request,
        access.as_ref().map(|(grant, _)| grant),
        refresh.as_ref().map(|(grant, _)| grant),
    ) {
        Ok(answer) => answer,
        Err(error) => return oauth_error(&error),
    };
    let mut batch = Batch::default();
    if let Some(key) = revocation.delete {
        batch.deletes.push((Kind::Access, key.clone()));
        batch.deletes.push((Kind::Refresh, key));
    }
    batch.revoke_families.extend(revocation.revoke_family);
    if let Err(error) = app.store.commit(batch, now()).await {
        tracing::error!(%error, "cannot revoke a token");
        return oauth_error(&OAuthError::server_error());
    }
    respond(response)
}

/// `GET /oauth-client-metadata.json`: the atproto client's metadata document,
/// served when atlogin has a public URL.
pub(super) async fn client_metadata(State(app): State<Shared>) -> Response {
    match app.client().metadata_document() {
        Some(document) => {
            let mut response = Json(document).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            response
        }
        None => super::pages::not_found().await,
    }
}

/// `GET /oauth/jwks.json`: the atproto client's public keys.
pub(super) async fn client_jwks(State(app): State<Shared>) -> Response {
    match app.client().jwks() {
        Some(jwks) => {
            let mut response = Json(jwks).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            response
        }
        None => super::pages::not_found().await,
    }
}
