//! The hosted pages and the browser side of OAuth 2.0, served at `{public-url}/...` with the
//! pool found from `client_id`: `GET /oauth2/authorize` (the code flow), `GET`/`POST /login`
//! (a server-rendered sign-in form: no JavaScript, a CSRF token on the form, the API's
//! lockout and user-existence rules), `POST /challenge` (the steps after a password: a new
//! password, MFA codes, choosing a factor, setting up an authenticator app), sign-up,
//! confirmation and password reset, `GET /logout` and `GET /oauth2/userInfo`. A signed-in
//! browser keeps a session cookie (sealed, one hour, HttpOnly, SameSite=Lax, Secure under
//! https), so a second authorize skips the form.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cognate_api::idp::ChallengeNameType;
use cognate_core::clients::ClientCall;
use cognate_core::oauth::{self, Authorization, AuthorizeError, HostedSession};
use cognate_core::records::UiCustomization;
use cognate_core::signin::step::Step;
use cognate_core::Ctx;
use serde_json::{json, Value};

use crate::AppState;

/// The session cookie of a pool: one per pool, so that a browser signed in to two pools
/// (an identity provider's and its relying party's, say) keeps both.
fn session_cookie(pool_id: &str) -> String {
    format!("cognate_session_{pool_id}")
}
const CSRF_COOKIE: &str = "cognate_csrf";
/// The authorize parameters a sign-in carries through the form.
const CARRIED: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str, cookies: &[String]) -> Response {
    styled_page(status, title, body, cookies, None)
}

/// A page in the hosted pages' markup: Cognito's customizable classes on the banner, labels,
/// inputs, buttons and messages, so that a pool's UI customization (its CSS, its logo) styles
/// it as it styles Cognito's.
fn styled_page(
    status: StatusCode,
    title: &str,
    body: &str,
    cookies: &[String],
    look: Option<(&str, &UiCustomization)>,
) -> Response {
    let css = look.and_then(|(_, c)| c.css.as_deref()).map(escape_style).unwrap_or_default();
    let logo = look
        .and_then(|(_, c)| c.image.as_ref())
        .map(|(media, encoded)| {
            format!("<img class=\"logo-customizable\" alt=\"\" src=\"data:{media};base64,{encoded}\">")
        })
        .unwrap_or_default();
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:24rem;margin:3rem auto;padding:0 1rem}}\
         label{{display:block;margin:.75rem 0 .25rem}}input{{width:100%;padding:.5rem;box-sizing:border-box}}\
         button{{margin-top:1rem;padding:.5rem 1rem}}.errorMessage-customizable{{color:#a40000}}\
         .textDescription-customizable{{color:#1a4d1a}}.logo-customizable{{max-width:100%;max-height:6rem}}</style>\
         <style>{css}</style></head>\
         <body class=\"background-customizable\"><main><div class=\"banner-customizable\">{logo}</div>\
         <h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title)
    );
    let mut response =
        (status, [("content-type", "text/html; charset=utf-8"), ("cache-control", "no-store")], html).into_response();
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append("set-cookie", value);
        }
    }
    response
}

/// CSS as the body of a `<style>` element: it cannot close the element.
fn escape_style(css: &str) -> String {
    css.replace('<', "\\3c ")
}

fn error_page(message: &str) -> Response {
    page(StatusCode::BAD_REQUEST, "Sign-in error", &format!("<p class=\"error\">{}</p>", escape(message)), &[])
}

/// `uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let separator = if uri.contains('?') { '&' } else { '?' };
    let query = cognate_core::aws::form_of(params);
    format!("{uri}{separator}{query}")
}

fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut response = (StatusCode::FOUND, [("cache-control", "no-store")]).into_response();
    if let Ok(value) = location.parse() {
        response.headers_mut().insert("location", value);
    }
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append("set-cookie", value);
        }
    }
    response
}

fn refused(err: AuthorizeError) -> Response {
    match err {
        AuthorizeError::Page(message) => error_page(&message),
        AuthorizeError::Redirect { redirect_uri, error, description, state } => {
            let mut params = vec![("error", error), ("error_description", description.as_str())];
            if let Some(state) = &state {
                params.push(("state", state));
            }
            redirect(&with_query(&redirect_uri, &params), &[])
        }
        AuthorizeError::Internal(err) => {
            tracing::error!(error = %err.message, "hosted pages");
            page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in error",
                "<p class=\"error\">Something went wrong.</p>",
                &[],
            )
        }
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.config.public_url.starts_with("https://") { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}")
}

/// The redirect that completes an authorization for a signed-in session.
async fn complete(
    ctx: &Ctx,
    call: &ClientCall,
    auth: &Authorization,
    session: &HostedSession,
    cookies: &[String],
) -> Response {
    if auth.implicit {
        // The implicit flow: the tokens themselves, in the fragment (never sent to a server).
        return match oauth::implicit_tokens(ctx, call, auth, session).await {
            Ok(tokens) => {
                let expires_in = tokens.expires_in.to_string();
                let mut params = vec![
                    ("access_token", tokens.access_token.as_str()),
                    ("token_type", "Bearer"),
                    ("expires_in", expires_in.as_str()),
                ];
                if auth.scopes.iter().any(|s| s == "openid") {
                    params.push(("id_token", tokens.id_token.as_str()));
                }
                if let Some(state) = &auth.state {
                    params.push(("state", state));
                }
                let fragment = cognate_core::aws::form_of(&params);
                redirect(&format!("{}#{fragment}", auth.redirect_uri), cookies)
            }
            Err(err) => refused(AuthorizeError::Internal(err)),
        };
    }
    match oauth::issue_code(ctx, call, auth, session) {
        Ok(code) => {
            let mut params = vec![("code", code.as_str())];
            if let Some(state) = &auth.state {
                params.push(("state", state));
            }
            redirect(&with_query(&auth.redirect_uri, &params), cookies)
        }
        Err(err) => refused(AuthorizeError::Internal(err)),
    }
}

/// A pool's domain serves that pool only: under `{prefix}.auth.localhost` (a prefix domain)
/// or a custom domain's own name, a client of another pool gets an error page, and an
/// unregistered prefix a 404. Other hosts (the public URL's) serve every pool.
async fn served_here(ctx: &Ctx, headers: &HeaderMap, call: &ClientCall) -> Option<Response> {
    let host = headers.get("host").and_then(|h| h.to_str().ok())?;
    // The public URL's own host serves every pool: no lookup.
    let public = ctx.settings().public_url.split_once("://").map_or("", |(_, rest)| rest);
    if public.split('/').next() == Some(host) {
        return None;
    }
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name).to_ascii_lowercase();
    let prefix = name.strip_suffix(".auth.localhost").map(str::to_owned);
    let lookup = prefix.clone().unwrap_or_else(|| name.clone());
    let domain = match ctx.store(move |s| s.get_domain(&lookup)).await {
        Ok(domain) => domain,
        Err(err) => return Some(refused(AuthorizeError::Internal(err))),
    };
    match (domain, prefix) {
        (Some(domain), _) if domain.pool_id != call.pool_id => {
            Some(error_page("This app client's user pool is not served at this domain."))
        }
        (None, Some(prefix)) => Some(
            (
                StatusCode::NOT_FOUND,
                [("content-type", "text/plain")],
                format!("No user pool has the domain {prefix}.\n"),
            )
                .into_response(),
        ),
        _ => None,
    }
}

/// `GET /oauth2/authorize`: a signed-in session gets its code at once; anyone else the form.
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    let (call, auth) = match oauth::authorize(&ctx, &params).await {
        Ok(checked) => checked,
        Err(err) => return refused(err),
    };
    if let Some(refusal) = served_here(&ctx, &headers, &call).await {
        return refusal;
    }
    // Straight to the identity provider the request names.
    if let Some(provider) = cognate_core::federation::chosen_provider(&call, &params) {
        let host = headers.get("host").and_then(|h| h.to_str().ok());
        return match cognate_core::federation::start(&ctx, &call, &auth, &provider, host).await {
            Ok(location) => redirect(&location, &[]),
            Err(err) if err.type_name() == "InternalErrorException" => refused(AuthorizeError::Internal(err)),
            Err(err) => error_page(&err.message),
        };
    }
    let name = session_cookie(&call.pool_id);
    let session = cookie_value(&headers, &name).and_then(|c| oauth::open_session(&ctx, c, &call.pool_id));
    // OIDC's prompt: `login` asks for the form even with a session, `none` for no form at all.
    let prompts: Vec<&str> = params.get("prompt").map(|p| p.split(' ').collect()).unwrap_or_default();
    let session = session.filter(|_| !prompts.contains(&"login"));
    match session {
        Some(session) => complete(&ctx, &call, &auth, &session, &[]).await,
        None if prompts.contains(&"none") => refused(AuthorizeError::Redirect {
            redirect_uri: auth.redirect_uri.clone(),
            error: "login_required",
            description: "prompt=none, and the user is not signed in.".into(),
            state: auth.state.clone(),
        }),
        None => {
            let carried: Vec<(&str, &str)> =
                CARRIED.iter().filter_map(|k| params.get(*k).map(|v| (*k, v.as_str()))).collect();
            redirect(&with_query("/login", &carried), &[])
        }
    }
}

/// A line above a form: what went wrong, or what to do next.
enum Notice<'a> {
    Error(&'a str),
    Info(&'a str),
}

/// A form field: name, label, input type, autocomplete.
type Field = (&'static str, &'static str, &'static str, &'static str);

const SIGN_IN_FIELDS: &[Field] =
    &[("username", "Username", "text", "username"), ("password", "Password", "password", "current-password")];
const SIGN_UP_FIELDS: &[Field] = &[
    ("username", "Username", "text", "username"),
    ("email", "Email", "email", "email"),
    ("password", "Password", "password", "new-password"),
];
const CONFIRM_FIELDS: &[Field] = &[("code", "Confirmation code", "text", "one-time-code")];
const FORGOT_FIELDS: &[Field] = &[("username", "Username", "text", "username")];
const RESET_FIELDS: &[Field] =
    &[("code", "Code", "text", "one-time-code"), ("password", "New password", "password", "new-password")];

/// One of the hosted forms: its title, where it posts, its button and what it asks for.
#[derive(Clone, Copy)]
struct Form<'a> {
    title: &'a str,
    action: &'a str,
    button: &'a str,
    fields: &'a [Field],
    /// Values posted back unseen, beyond the authorize parameters.
    hidden: &'a [(&'a str, &'a str)],
    /// Markup above the fields, built by this module (values in it escaped).
    intro: &'a str,
    /// A choice among answers (value, label), posted as `answer`.
    choices: &'a [(&'a str, &'a str)],
}

impl<'a> Form<'a> {
    const fn new(title: &'a str, action: &'a str, button: &'a str, fields: &'a [Field]) -> Self {
        Form { title, action, button, fields, hidden: &[], intro: "", choices: &[] }
    }

    fn carrying(self, hidden: &'a [(&'a str, &'a str)]) -> Self {
        Form { hidden, ..self }
    }
}

const SIGN_IN: Form<'static> = Form::new("Sign in", "/login", "Sign in", SIGN_IN_FIELDS);
const SIGN_UP: Form<'static> = Form::new("Sign up", "/signup", "Sign up", SIGN_UP_FIELDS);
const CONFIRM: Form<'static> = Form::new("Confirm your account", "/confirm", "Confirm", CONFIRM_FIELDS);
const FORGOT: Form<'static> = Form::new("Forgot your password?", "/forgotPassword", "Send a code", FORGOT_FIELDS);
const RESET: Form<'static> = Form::new("Reset your password", "/confirmForgotPassword", "Reset", RESET_FIELDS);

/// One of the hosted forms, posting with the authorize parameters carried along. Its CSRF
/// token is the browser's cookie when it has one (so that forms in several tabs, and a form
/// shown again after an error, all stay valid), else a new one.
fn form_page(
    state: &AppState,
    call: &ClientCall,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    form: Form,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let Form { title, action, button, fields, hidden: extra, intro, choices } = form;
    let csrf = cookie_value(headers, CSRF_COOKIE)
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(|| hex::encode(cognate_crypto::ids::random_bytes::<16>()), str::to_owned);
    let hidden: String = CARRIED
        .iter()
        .filter_map(|k| params.get(*k).map(|v| (*k, v.as_str())))
        .chain(extra.iter().copied())
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", escape(v)))
        .collect();
    let inputs: String = fields
        .iter()
        .enumerate()
        .map(|(i, (name, label, kind, autocomplete))| {
            let focus = if i == 0 { " autofocus" } else { "" };
            // OIDC's login_hint fills in the username.
            let value = match (*name, params.get("login_hint")) {
                ("username", Some(hint)) => format!(" value=\"{}\"", escape(hint)),
                _ => String::new(),
            };
            format!(
                "<label class=\"label-customizable\" for=\"{name}\">{label}</label><input \
                 class=\"inputField-customizable\" id=\"{name}\" name=\"{name}\" type=\"{kind}\" \
                 autocomplete=\"{autocomplete}\"{value} required{focus}>"
            )
        })
        .collect();
    let choices: String = if choices.is_empty() {
        String::new()
    } else {
        let options: String = choices
            .iter()
            .enumerate()
            .map(|(i, (value, label))| {
                let checked = if i == 0 { " checked" } else { "" };
                format!(
                    "<label class=\"label-customizable\"><input type=\"radio\" name=\"answer\" \
                     value=\"{}\"{checked}> {}</label>",
                    escape(value),
                    escape(label)
                )
            })
            .collect();
        format!(
            "<fieldset><legend class=\"textDescription-customizable\">{}</legend>{options}</fieldset>",
            escape(title)
        )
    };
    let notice = match notice {
        Some(Notice::Error(text)) => {
            format!("<p class=\"error errorMessage-customizable\" role=\"alert\">{}</p>", escape(text))
        }
        Some(Notice::Info(text)) => {
            format!("<p class=\"info textDescription-customizable\" role=\"status\">{}</p>", escape(text))
        }
        None => String::new(),
    };
    let carried: Vec<(&str, &str)> = CARRIED.iter().filter_map(|k| params.get(*k).map(|v| (*k, v.as_str()))).collect();
    let links = match action {
        "/login" => {
            // One button per identity provider the client supports.
            let providers: String = call
                .client
                .supported_identity_providers
                .iter()
                .flatten()
                .filter(|p| *p != "COGNITO" && call.pool.identity_providers.contains_key(*p))
                .map(|p| {
                    let mut query = carried.clone();
                    query.push(("identity_provider", p.as_str()));
                    format!(
                        "<p><a class=\"idpButton-customizable\" href=\"{}\">Sign in with {}</a></p>",
                        escape(&with_query("/oauth2/authorize", &query)),
                        escape(p)
                    )
                })
                .collect();
            format!(
                "{providers}<p><a href=\"{}\">Forgot your password?</a></p><p>No account yet? <a href=\"{}\">Sign \
                 up</a></p>",
                escape(&with_query("/forgotPassword", &carried)),
                escape(&with_query("/signup", &carried))
            )
        }
        _ => format!("<p><a href=\"{}\">Sign in</a></p>", escape(&with_query("/login", &carried))),
    };
    let body = format!(
        "{notice}<form method=\"post\" action=\"{action}\">{hidden}\
         <input type=\"hidden\" name=\"_csrf\" value=\"{csrf}\">{intro}{choices}{inputs}\
         <button class=\"submitButton-customizable\" type=\"submit\">{button}</button></form>{links}"
    );
    let look = cognate_core::ui_customization::effective(&call.pool, &call.client_id);
    styled_page(status, title, &body, &[cookie(state, CSRF_COOKIE, &csrf, 3600)], look)
}

fn login_form(
    state: &AppState,
    call: &ClientCall,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    form_page(state, call, headers, params, SIGN_IN, notice, status)
}

/// The posted form, if its CSRF token is the cookie this server set with it (double submit).
async fn read_form(req: Request) -> Result<(HeaderMap, BTreeMap<String, String>), Response> {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Err(error_page("The form is too large."));
    };
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return Err(error_page("The form could not be read."));
    };
    let params: BTreeMap<String, String> = form.into_iter().collect();
    let csrf_ok = match (cookie_value(&parts.headers, CSRF_COOKIE), params.get("_csrf")) {
        (Some(cookie), Some(field)) => cognate_crypto::ct::eq(cookie.as_bytes(), field.as_bytes()),
        _ => false,
    };
    if !csrf_ok {
        return Err(page(
            StatusCode::FORBIDDEN,
            "Sign-in error",
            "<p class=\"error\">The form expired or did not come from this page: start again.</p>",
            &[],
        ));
    }
    Ok((parts.headers, params))
}

/// `GET /login`: the sign-in form for a valid authorize request.
pub async fn login_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    let (call, _) = match oauth::authorize(&ctx, &params).await {
        Ok(checked) => checked,
        Err(err) => return refused(err),
    };
    if let Some(refusal) = served_here(&ctx, &headers, &call).await {
        return refusal;
    }
    login_form(&state, &call, &headers, &params, None, StatusCode::OK)
}

/// A posted hosted form: CSRF-checked, with its authorize parameters checked again.
struct Posted {
    headers: HeaderMap,
    params: BTreeMap<String, String>,
    ctx: Ctx,
    call: ClientCall,
    auth: Authorization,
}

impl Posted {
    /// `form` next, with `notice` above it.
    fn show(&self, state: &AppState, form: Form, notice: Notice, status: StatusCode) -> Response {
        form_page(state, &self.call, &self.headers, &self.params, form, Some(notice), status)
    }

    /// The sign-in form next, with what just happened.
    fn sign_in_next(&self, state: &AppState, info: &str) -> Response {
        login_form(state, &self.call, &self.headers, &self.params, Some(Notice::Info(info)), StatusCode::OK)
    }

    /// A call's error: `form` again with the API's words when the caller can correct it, the
    /// error page when the server failed.
    fn again(&self, state: &AppState, form: Form, err: cognate_core::ApiError) -> Response {
        if err.type_name() == "InternalErrorException" {
            return refused(AuthorizeError::Internal(err));
        }
        self.show(state, form, Notice::Error(&err.message), StatusCode::BAD_REQUEST)
    }

    fn field(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or_default()
    }
}

async fn posted(state: &Arc<AppState>, req: Request) -> Result<Posted, Response> {
    let (headers, params) = read_form(req).await?;
    let mut ctx = crate::front::anonymous_ctx(state);
    ctx.hosted_sign_in = true;
    let (call, auth) = oauth::authorize(&ctx, &params).await.map_err(refused)?;
    if let Some(refusal) = served_here(&ctx, &headers, &call).await {
        return Err(refusal);
    }
    Ok(Posted { headers, params, ctx, call, auth })
}

/// `POST /login`: the form's answer.
pub async fn login(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let Posted { headers, mut params, ctx, call, auth } = match posted(&state, req).await {
        Ok(posted) => posted,
        Err(refusal) => return refusal,
    };
    let username = params.remove("username").unwrap_or_default();
    let password = params.remove("password").unwrap_or_default();
    let step = cognate_core::signin::hosted_password(&ctx, &call, &username, password).await;
    match step {
        Err(err) if err.type_name() != "InternalErrorException" => {
            // The API's own words: the same for an unknown user and a wrong password.
            login_form(&state, &call, &headers, &params, Some(Notice::Error(&err.message)), StatusCode::BAD_REQUEST)
        }
        step => after_step(&state, &ctx, &headers, &params, (&call, &auth), &username, step).await,
    }
}

/// A challenge the browser is answering: which, its Session, the user, and what the page
/// shows besides its field (MFA_SETUP: the key of the authenticator app being set up;
/// SELECT_MFA_TYPE: the factors to choose from, as the JSON list Cognito sends).
struct Pending<'a> {
    name: &'a ChallengeNameType,
    session: &'a str,
    username: &'a str,
    detail: &'a str,
}

/// What a challenge page asks for: its field (SELECT_MFA_TYPE: a choice instead), and the
/// name of the answer RespondToAuthChallenge takes (MFA_SETUP's code goes to
/// VerifySoftwareToken first).
fn challenge_field(name: &ChallengeNameType) -> Option<(Option<Field>, &'static str)> {
    const APP_CODE: Field = ("answer", "Code from your authenticator app", "text", "one-time-code");
    Some(match name {
        ChallengeNameType::NewPasswordRequired => {
            (Some(("answer", "New password", "password", "new-password")), "NEW_PASSWORD")
        }
        ChallengeNameType::SoftwareTokenMfa => (Some(APP_CODE), "SOFTWARE_TOKEN_MFA_CODE"),
        ChallengeNameType::SmsMfa => (Some(("answer", "Code sent by SMS", "text", "one-time-code")), "SMS_MFA_CODE"),
        ChallengeNameType::EmailOtp => {
            (Some(("answer", "Code sent by email", "text", "one-time-code")), "EMAIL_OTP_CODE")
        }
        ChallengeNameType::MfaSetup => (Some(APP_CODE), "USER_CODE"),
        ChallengeNameType::SelectMfaType => (None, "ANSWER"),
        _ => return None,
    })
}

fn factor_label(factor: &str) -> &'static str {
    match factor {
        "SOFTWARE_TOKEN_MFA" => "Authenticator app",
        "SMS_MFA" => "Text message (SMS)",
        "EMAIL_OTP" => "Email",
        _ => "Another factor",
    }
}

/// The key of an authenticator app being set up: as a QR code of its `otpauth://` URI (what
/// authenticator apps scan) and as text to type in.
fn totp_setup_intro(call: &ClientCall, username: &str, secret: &str) -> String {
    let issuer = call.pool.pool.name.as_deref().unwrap_or("Cognate");
    let label = cognate_core::aws::percent_encode(&format!("{issuer}:{username}"));
    let query = cognate_core::aws::form_of(&[("secret", secret), ("issuer", issuer)]);
    let uri = format!("otpauth://totp/{label}?{query}");
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build())
        .map(|svg| {
            format!(
                "<p><img class=\"qr\" alt=\"A QR code of the key below, for your authenticator app\" \
                 src=\"data:image/svg+xml;base64,{}\"></p>",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, svg)
            )
        })
        .unwrap_or_default();
    format!(
        "<p class=\"textDescription-customizable\">Scan the QR code with an authenticator app, or enter this \
         key in it. Then enter the code it shows.</p>{qr}<p><code id=\"secret\">{}</code></p>",
        escape(secret)
    )
}

fn challenge_page(
    state: &AppState,
    call: &ClientCall,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    pending: Pending,
    notice: Option<Notice>,
    status: StatusCode,
) -> Response {
    let Pending { name, session, username, detail } = pending;
    let Some((field, _)) = challenge_field(name) else {
        return page(
            StatusCode::NOT_IMPLEMENTED,
            "Sign in",
            &format!(
                "<p class=\"error\">This account's sign-in continues with {}, which Cognate's hosted pages do not \
                 offer yet. Sign in through the API instead.</p>",
                escape(name.as_str())
            ),
            &[],
        );
    };
    let title = match name {
        ChallengeNameType::NewPasswordRequired => "Set a new password",
        ChallengeNameType::MfaSetup => "Set up your authenticator app",
        ChallengeNameType::SelectMfaType => "Choose how to confirm your sign-in",
        _ => "Enter your code",
    };
    let intro = match name {
        ChallengeNameType::MfaSetup => totp_setup_intro(call, username, detail),
        _ => String::new(),
    };
    let factors: Vec<String> = match name {
        ChallengeNameType::SelectMfaType => serde_json::from_str(detail).unwrap_or_default(),
        _ => Vec::new(),
    };
    let choices: Vec<(&str, &str)> = factors.iter().map(|f| (f.as_str(), factor_label(f))).collect();
    let hidden = [("challenge", name.as_str()), ("session", session), ("username", username), ("detail", detail)];
    let form = Form {
        title,
        action: "/challenge",
        button: "Continue",
        fields: field.as_slice(),
        hidden: &hidden,
        intro: &intro,
        choices: &choices,
    };
    form_page(state, call, headers, params, form, notice, status)
}

/// A sign-in that cannot go on (a spent or expired Session, too many guesses): the sign-in
/// form again, with the API's words.
fn start_again(
    state: &AppState,
    call: &ClientCall,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    err: cognate_core::ApiError,
) -> Response {
    if err.type_name() == "InternalErrorException" {
        return refused(AuthorizeError::Internal(err));
    }
    login_form(state, call, headers, params, Some(Notice::Error(&err.message)), StatusCode::BAD_REQUEST)
}

/// Where a sign-in step leads: signed in (the session cookie, then the code for the relying
/// party), or the page of the next challenge.
async fn after_step(
    state: &AppState,
    ctx: &Ctx,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
    (call, auth): (&ClientCall, &Authorization),
    username: &str,
    step: cognate_core::ApiResult<Step>,
) -> Response {
    match step {
        Ok(Step::SignedIn(tokens)) => {
            // The API tokens of the sign-in are not what the relying party gets: it exchanges
            // the code for tokens with the scopes it asked for. Their claims name the user.
            let claims = cognate_core::tokens::peek_claims(&tokens.id_token);
            let text =
                |name: &str| claims.as_ref().and_then(|c| c.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
            let (Some(user), Some(sub)) = (text("cognito:username"), text("sub")) else {
                return refused(AuthorizeError::Internal(cognate_core::ApiError::internal(
                    "ID token without its user",
                )));
            };
            let session = HostedSession {
                pool: call.pool_id.clone(),
                user,
                sub,
                auth_time: ctx.now_ms() / 1000,
                expires_ms: ctx.now_ms() + oauth::SESSION_MS,
            };
            match oauth::seal_session(ctx, &session) {
                Ok(sealed) => {
                    let cookies = [cookie(state, &session_cookie(&call.pool_id), &sealed, oauth::SESSION_MS / 1000)];
                    complete(ctx, call, auth, &session, &cookies).await
                }
                Err(err) => refused(AuthorizeError::Internal(err)),
            }
        }
        Ok(Step::Challenge(challenge)) => {
            let session = challenge.session.as_deref().unwrap_or_default();
            let username = challenge.parameters.get("USER_ID_FOR_SRP").map_or(username, String::as_str);
            let detail = match challenge.name {
                ChallengeNameType::MfaSetup => {
                    // The key is made now (AssociateSoftwareToken with the Session), as an app
                    // would on receiving MFA_SETUP.
                    let associate = cognate_api::idp::AssociateSoftwareTokenRequest {
                        session: Some(session.to_owned().into()),
                        ..Default::default()
                    };
                    match crate::ops::mfa::associate_software_token(ctx.clone(), associate).await {
                        Ok(associated) => associated.secret_code.map(|s| s.0).unwrap_or_default(),
                        Err(err) => return start_again(state, call, headers, params, err),
                    }
                }
                ChallengeNameType::SelectMfaType => {
                    challenge.parameters.get("MFAS_CAN_CHOOSE").cloned().unwrap_or_default()
                }
                _ => String::new(),
            };
            let pending = Pending { name: &challenge.name, session, username, detail: &detail };
            challenge_page(state, call, headers, params, pending, None, StatusCode::OK)
        }
        Err(err) => refused(AuthorizeError::Internal(err)),
    }
}

/// `POST /challenge`: the answer to a challenge page (a new password, an MFA code, a factor
/// chosen, the first code of an authenticator app being set up).
pub async fn challenge(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let Posted { headers, mut params, ctx, call, auth } = match posted(&state, req).await {
        Ok(posted) => posted,
        Err(refusal) => return refusal,
    };
    let name = ChallengeNameType::from(params.remove("challenge").unwrap_or_default().as_str());
    let Some((_, answer_name)) = challenge_field(&name) else {
        return error_page("This sign-in step is not one the hosted pages answer.");
    };
    let mut take = |key: &str| params.remove(key).unwrap_or_default();
    let (session, username, detail, answer) = (take("session"), take("username"), take("detail"), take("answer"));
    let pending = Pending { name: &name, session: &session, username: &username, detail: &detail };
    let retry = |err: &cognate_core::ApiError| {
        challenge_page(
            &state,
            &call,
            &headers,
            &params,
            pending,
            Some(Notice::Error(&err.message)),
            StatusCode::BAD_REQUEST,
        )
    };
    let mut responses = BTreeMap::from([(cognate_core::signin::step::Params::USERNAME.to_owned(), username.clone())]);
    if name == ChallengeNameType::MfaSetup {
        // As an app does it: VerifySoftwareToken with the Session proves the app holds the
        // key, then the MFA_SETUP answer completes the sign-in.
        let verify = cognate_api::idp::VerifySoftwareTokenRequest {
            session: Some(session.clone().into()),
            user_code: answer.into(),
            ..Default::default()
        };
        if let Err(err) = crate::ops::mfa::verify_software_token(ctx.clone(), verify).await {
            return match err.type_name() {
                "EnableSoftwareTokenMFAException" | "CodeMismatchException" => retry(&err),
                _ => start_again(&state, &call, &headers, &params, err),
            };
        }
    } else {
        responses.insert(answer_name.to_owned(), answer);
    }
    let responses = cognate_core::signin::step::Params::new(responses);
    let step = cognate_core::signin::respond(&ctx, &call, name.clone(), responses, Some(&session)).await;
    match step {
        Err(err) if matches!(err.type_name(), "CodeMismatchException" | "InvalidPasswordException") => retry(&err),
        Err(err) => start_again(&state, &call, &headers, &params, err),
        step => after_step(&state, &ctx, &headers, &params, (&call, &auth), &username, step).await,
    }
}

/// `GET /oauth2/userInfo`: the signed-in user's claims for an access token with `openid`, as
/// far as its scopes reach.
pub async fn user_info(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let unauthorized = |error: &str, status: StatusCode| {
        let challenge = format!("Bearer error=\"{error}\"");
        let headers = [
            ("www-authenticate", challenge.as_str()),
            ("content-type", "application/json"),
            ("access-control-allow-origin", "*"),
        ];
        (status, headers, json!({"error": error}).to_string()).into_response()
    };
    let Some(token) =
        headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized("invalid_request", StatusCode::BAD_REQUEST);
    };
    let ctx = crate::front::anonymous_ctx(&state);
    let Ok((caller, claims)) = cognate_core::access::authenticate_for(&ctx, token.trim(), "openid").await else {
        return unauthorized("invalid_token", StatusCode::UNAUTHORIZED);
    };
    let scopes: Vec<&str> = claims.get("scope").and_then(Value::as_str).unwrap_or_default().split(' ').collect();
    let reaches = |attribute: &str| match attribute {
        "email" | "email_verified" => scopes.contains(&"email"),
        "phone_number" | "phone_number_verified" => scopes.contains(&"phone"),
        _ => scopes.contains(&"profile") || scopes.contains(&"aws.cognito.signin.user.admin"),
    };
    let mut info = serde_json::Map::new();
    for (name, value) in &caller.user.attributes {
        if name != "sub" && !name.starts_with("dev:") && reaches(name) {
            let typed = match name.as_str() {
                "email_verified" | "phone_number_verified" => json!(value == "true"),
                _ => json!(value),
            };
            info.insert(name.clone(), typed);
        }
    }
    info.insert("sub".into(), json!(caller.user.record.sub.as_str()));
    info.insert("username".into(), json!(caller.user.record.username));
    let headers = [("content-type", "application/json;charset=UTF-8"), ("access-control-allow-origin", "*")];
    (StatusCode::OK, headers, Value::Object(info).to_string()).into_response()
}

/// `GET /logout`: ends the hosted session (its cookie cleared) and goes to the client's
/// `logout_uri`, which must be one of its LogoutURLs exactly; or, given `redirect_uri` and
/// `response_type` instead, back to the sign-in form for a new authorization. Anything else
/// is an error page: a logout never redirects where the client did not register.
pub async fn logout(State(state): State<Arc<AppState>>, Query(params): Query<BTreeMap<String, String>>) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    if let Some(logout_uri) = params.get("logout_uri") {
        let Some(client_id) = params.get("client_id") else {
            return error_page("The request has no client_id.");
        };
        return match cognate_core::clients::load_client(&ctx, client_id).await {
            Ok(call) if call.client.logout_urls.iter().flatten().any(|url| url == logout_uri) => {
                redirect(logout_uri, &[cookie(&state, &session_cookie(&call.pool_id), "", 0)])
            }
            Ok(_) => error_page("The logout_uri is not one of the app client's sign-out URLs."),
            Err(_) => error_page("The client_id names no app client."),
        };
    }
    match oauth::authorize(&ctx, &params).await {
        Ok((call, _)) => {
            let carried: Vec<(&str, &str)> =
                CARRIED.iter().filter_map(|k| params.get(*k).map(|v| (*k, v.as_str()))).collect();
            redirect(&with_query("/login", &carried), &[cookie(&state, &session_cookie(&call.pool_id), "", 0)])
        }
        Err(err) => refused(err),
    }
}

/// `GET /signup`: the sign-up form for a valid authorize request.
pub async fn sign_up_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    let (call, _) = match oauth::authorize(&ctx, &params).await {
        Ok(checked) => checked,
        Err(err) => return refused(err),
    };
    if let Some(refusal) = served_here(&ctx, &headers, &call).await {
        return refusal;
    }
    form_page(&state, &call, &headers, &params, SIGN_UP, None, StatusCode::OK)
}

/// `POST /signup`: SignUp as the API does it (the pool's policies, its verification, the
/// client's writable attributes); then the confirmation form, or the sign-in form when there
/// is nothing to confirm.
pub async fn sign_up(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let form = match posted(&state, req).await {
        Ok(posted) => posted,
        Err(refusal) => return refusal,
    };
    let attributes: Vec<cognate_api::idp::AttributeType> = Some(form.field("email"))
        .filter(|e| !e.is_empty())
        .map(|email| cognate_api::idp::AttributeType { name: "email".into(), value: Some(email.to_owned().into()) })
        .into_iter()
        .collect();
    let (username, password) = (form.field("username"), Some(form.field("password")));
    match cognate_core::account::sign_up(&form.ctx, &form.call, username, password, (&attributes, &[])).await {
        Ok(signed_up) if signed_up.confirmed => form.sign_in_next(&state, "Your account was created: sign in."),
        Ok(signed_up) if signed_up.code_delivery.is_some() => form.show(
            &state,
            CONFIRM.carrying(&[("username", username)]),
            Notice::Info("We have sent a code by email. Enter it to confirm your account."),
            StatusCode::OK,
        ),
        // No contact to verify and no PreSignUp confirmation: the user waits for an
        // administrator's confirmation, as in Cognito.
        Ok(_) => form
            .sign_in_next(&state, "Your account was created. An administrator must confirm it before you can sign in."),
        Err(err) => form.again(&state, SIGN_UP, err),
    }
}

/// `POST /confirm`: ConfirmSignUp with the code, then the sign-in form.
pub async fn confirm(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let form = match posted(&state, req).await {
        Ok(posted) => posted,
        Err(refusal) => return refusal,
    };
    let (username, code) = (form.field("username"), form.field("code"));
    match cognate_core::account::confirm_sign_up(&form.ctx, &form.call, username, code, false).await {
        Ok(()) => form.sign_in_next(&state, "Your account is confirmed: sign in."),
        Err(err) => form.again(&state, CONFIRM.carrying(&[("username", username)]), err),
    }
}

/// `GET /forgotPassword`: the form that asks for a reset code.
pub async fn forgot_password_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    let (call, _) = match oauth::authorize(&ctx, &params).await {
        Ok(checked) => checked,
        Err(err) => return refused(err),
    };
    if let Some(refusal) = served_here(&ctx, &headers, &call).await {
        return refusal;
    }
    form_page(&state, &call, &headers, &params, FORGOT, None, StatusCode::OK)
}

/// `POST /forgotPassword`: ForgotPassword as the API does it (an unknown user gets the same
/// answer where the client hides user existence), then the reset form.
pub async fn forgot_password(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let form = match posted(&state, req).await {
        Ok(posted) => posted,
        Err(refusal) => return refusal,
    };
    let username = form.field("username");
    match cognate_core::account::forgot_password(&form.ctx, &form.call, username).await {
        Ok(_) => form.show(
            &state,
            RESET.carrying(&[("username", username)]),
            Notice::Info("If the account exists, we have sent it a code. Enter it with a new password."),
            StatusCode::OK,
        ),
        Err(err) => form.again(&state, FORGOT, err),
    }
}

/// `POST /confirmForgotPassword`: ConfirmForgotPassword with the code and the new password,
/// then the sign-in form.
pub async fn confirm_forgot_password(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let form = match posted(&state, req).await {
        Ok(posted) => posted,
        Err(refusal) => return refusal,
    };
    let (username, code, password) = (form.field("username"), form.field("code"), form.field("password"));
    match cognate_core::account::confirm_forgot_password(&form.ctx, &form.call, username, code, password).await {
        Ok(()) => form.sign_in_next(&state, "Your password has been reset: sign in."),
        Err(err) => form.again(&state, RESET.carrying(&[("username", username)]), err),
    }
}

/// `GET /_cognate/ui/{pool}/{client or ALL}/logo`: a UI customization's logo (its ImageUrl).
pub async fn logo(
    State(state): State<Arc<AppState>>,
    axum::extract::Path((pool, key)): axum::extract::Path<(String, String)>,
) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    match cognate_core::ui_customization::logo(&ctx, &pool, &key).await {
        Ok(Some((media, bytes))) => (StatusCode::OK, [("content-type", media)], bytes).into_response(),
        _ => (StatusCode::NOT_FOUND, [("content-type", "text/plain".to_owned())], "Not Found").into_response(),
    }
}

/// `GET /oauth2/idpresponse`: back from an identity provider with its code; the pool's user
/// for the provider's user is signed in and the relying party gets its code (or tokens).
pub async fn idp_response(
    State(state): State<Arc<AppState>>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    if let Some(error) = params.get("error") {
        return error_page(&format!("The identity provider refused the sign-in: {error}."));
    }
    let (Some(state_param), Some(code)) = (params.get("state"), params.get("code")) else {
        return error_page("The identity provider's answer has no code or state.");
    };
    let finished = cognate_core::federation::finish(&ctx, state_param, code).await;
    federated_sign_in(&state, &ctx, finished).await
}

/// The end of a sign-in through an identity provider (OIDC or SAML): the hosted session
/// cookie and the relying party's code, or the refusal's error page.
async fn federated_sign_in(
    state: &AppState,
    ctx: &Ctx,
    finished: cognate_core::error::ApiResult<(ClientCall, Authorization, HostedSession)>,
) -> Response {
    match finished {
        Ok((call, auth, session)) => match oauth::seal_session(ctx, &session) {
            Ok(sealed) => {
                let cookies = [cookie(state, &session_cookie(&call.pool_id), &sealed, oauth::SESSION_MS / 1000)];
                complete(ctx, &call, &auth, &session, &cookies).await
            }
            Err(err) => refused(AuthorizeError::Internal(err)),
        },
        Err(err) if err.type_name() == "InternalErrorException" => refused(AuthorizeError::Internal(err)),
        Err(err) => {
            tracing::info!(error = %err.message, "sign-in through an identity provider refused");
            error_page(&err.message)
        }
    }
}

/// `POST /saml2/idpresponse`: where a SAML identity provider posts its response (HTTP-POST
/// binding: `SAMLResponse` and `RelayState`, the sealed state the sign-in started with). The
/// response is verified (signature, status, destination, request, audience, issuer, time)
/// before anyone signs in; any failure is an error page and signs nobody in. IdP-initiated
/// responses (no RelayState of ours, no InResponseTo) are refused: not supported.
pub async fn saml_response(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let ctx = crate::front::anonymous_ctx(&state);
    // A SAML response with a few certificates and attributes is a few kilobytes; base64 and
    // URL encoding grow it by about half.
    let Ok(body) = axum::body::to_bytes(req.into_body(), 512 * 1024).await else {
        return error_page("The SAML response is too large.");
    };
    let Ok(form) = serde_urlencoded::from_bytes::<BTreeMap<String, String>>(&body) else {
        return error_page("The SAML response could not be read.");
    };
    let Some(saml_response) = form.get("SAMLResponse") else {
        return error_page("The identity provider's answer has no SAMLResponse.");
    };
    let Some(relay_state) = form.get("RelayState").filter(|r| !r.is_empty()) else {
        return page(
            StatusCode::NOT_IMPLEMENTED,
            "Sign-in error",
            "<p class=\"error\">IdP-initiated SAML sign-in (a response with no RelayState from this server) is not \
             supported: start the sign-in at /oauth2/authorize with identity_provider.</p>",
            &[],
        );
    };
    let finished = cognate_core::federation::finish_saml(&ctx, relay_state, saml_response).await;
    federated_sign_in(&state, &ctx, finished).await
}
