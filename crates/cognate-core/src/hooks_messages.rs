//! The message triggers, around every code and temporary password Cognate sends: a
//! CustomMessage function rewrites the message Cognate composed from the pool's templates,
//! and a custom email or SMS sender function takes the delivery over (queued, with the code
//! encrypted as an AWS Encryption SDK message under `--custom-sender-key`).
//!
//! A message is [`prepare`]d before anything it reports is written (a CustomMessage failure
//! is the operation's error, with nothing half-done: no user created, the previous code still
//! the one that works) and [`Prepared::send`] after the write has committed.

use cognate_api::idp::UserPoolType;
use cognate_api::ErrorCode;
use cognate_store::OutboxMessage;
use serde_json::{json, Map, Value};

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::hooks::{client_metadata, user_attributes};
use crate::lambda::{self, Event, Trigger};
use crate::users::delivery::{self, Channel, Kind, Message};
use crate::users::{codes, User};

/// Where the code goes in a CustomMessage function's message (`request.codeParameter`).
const CODE_PARAMETER: &str = "{####}";
/// Where the user name goes in an invitation (`request.usernameParameter`).
const USERNAME_PARAMETER: &str = "{username}";
/// The longest email body a CustomMessage function may return: Cognito sends its default
/// message instead of a longer one.
const MAX_EMAIL_MESSAGE_CHARS: usize = 20_000;

/// Why a message is sent: the trigger sources' suffixes (`CustomMessage_SignUp`,
/// `CustomEmailSender_SignUp`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Occasion {
    SignUp,
    AdminCreateUser,
    ResendCode,
    ForgotPassword,
    UpdateUserAttribute,
    VerifyUserAttribute,
    Authentication,
}

impl Occasion {
    pub fn name(self) -> &'static str {
        match self {
            Occasion::SignUp => "SignUp",
            Occasion::AdminCreateUser => "AdminCreateUser",
            Occasion::ResendCode => "ResendCode",
            Occasion::ForgotPassword => "ForgotPassword",
            Occasion::UpdateUserAttribute => "UpdateUserAttribute",
            Occasion::VerifyUserAttribute => "VerifyUserAttribute",
            Occasion::Authentication => "Authentication",
        }
    }

    /// The pool's templates the message starts from.
    fn kind(self) -> Kind {
        match self {
            Occasion::AdminCreateUser => Kind::Invitation,
            Occasion::ForgotPassword => Kind::PasswordReset,
            _ => Kind::Verification,
        }
    }
}

/// A message about to be sent: to whom, where, and why.
pub struct Outgoing<'a> {
    pub pool_id: &'a str,
    pub pool: &'a UserPoolType,
    /// The app client of the call (`callerContext.clientId`), if any.
    pub client_id: Option<&'a str>,
    pub occasion: Occasion,
    pub user: &'a User,
    pub channel: Channel,
    pub destination: &'a str,
}

/// A message ready to go, to the outbox and SMTP or to a custom sender function.
pub struct Prepared {
    pool_id: String,
    username: String,
    route: Route,
}

enum Route {
    Deliver(Message),
    CustomSender(SenderCall),
}

/// A custom sender function's event, and where the message would have gone.
struct SenderCall {
    trigger: Trigger,
    function: String,
    source: String,
    client_id: Option<String>,
    request: Value,
    channel: Channel,
    destination: String,
}

/// Composes the message carrying `code` (a code or temporary password): from the pool's
/// templates, rewritten by the pool's CustomMessage function if it has one, or, when a custom
/// sender takes the channel over, that function's event with the code encrypted.
pub async fn prepare(ctx: &Ctx, out: &Outgoing<'_>, code: &str) -> ApiResult<Prepared> {
    let username = out.user.record.username.clone();
    let prepared = |route| Prepared { pool_id: out.pool_id.to_owned(), username: username.clone(), route };
    let sender = match out.channel {
        Channel::Email => Trigger::CustomEmailSender,
        Channel::Sms => Trigger::CustomSmsSender,
    };
    if let Some(function) = sender.function(out.pool.lambda_config.as_ref()) {
        // The sender writes its own message: Cognito runs no CustomMessage function for it.
        return Ok(prepared(Route::CustomSender(SenderCall {
            trigger: sender,
            function: function.to_owned(),
            source: format!("{}_{}", sender.name(), out.occasion.name()),
            client_id: out.client_id.map(str::to_owned),
            request: custom_sender_request(ctx, out, sender, code)?,
            channel: out.channel,
            destination: out.destination.to_owned(),
        })));
    }
    let message = delivery::compose(out.pool, out.occasion.kind(), out.channel, out.destination, code, &username);
    Ok(prepared(Route::Deliver(custom_message(ctx, out, message, code).await?)))
}

/// [`prepare`] for a new code for `purpose`, which then replaces the user's previous one:
/// a CustomMessage failure leaves the previous code working.
pub async fn prepare_code(ctx: &Ctx, out: &Outgoing<'_>, purpose: &str) -> ApiResult<Prepared> {
    let code = codes::new_code();
    let prepared = prepare(ctx, out, &code).await?;
    codes::store(ctx, out.pool_id, &out.user.record.username_key, purpose, &code).await?;
    Ok(prepared)
}

impl Prepared {
    /// Delivers the message (see [`delivery::deliver`]) or hands it to the custom sender
    /// function, without waiting for it. The outbox records that hand-over, without the code:
    /// only the function can read it.
    pub async fn send(self, ctx: &Ctx) -> ApiResult<()> {
        let Prepared { pool_id, username, route } = self;
        let call = match route {
            Route::Deliver(message) => return delivery::deliver(ctx, &pool_id, &username, message).await,
            Route::CustomSender(call) => call,
        };
        let record = OutboxMessage {
            id: 0,
            pool_id: pool_id.clone(),
            username: username.clone(),
            channel: call.channel.name().into(),
            destination: call.destination,
            code: None,
            subject: None,
            body: format!("Handed to {} ({}); the code went to it encrypted.", call.source, call.function),
            created_ms: ctx.now_ms(),
        };
        crate::outbox::append(ctx, record).await?;
        let event = Event {
            trigger: call.trigger,
            source: &call.source,
            pool_id: &pool_id,
            user_name: &username,
            client_id: call.client_id.as_deref(),
            version: "1",
            request: call.request,
        };
        lambda::invoke_queued(ctx, &call.function, event);
        Ok(())
    }
}

/// A custom sender's request: the code encrypted under the server's custom sender key and
/// bound to the pool (encryption context `userpool-id`), as base64.
fn custom_sender_request(ctx: &Ctx, out: &Outgoing<'_>, sender: Trigger, code: &str) -> ApiResult<Value> {
    use base64::Engine as _;
    let Some(keyring) = ctx.settings().custom_sender_keyring.as_ref() else {
        // Cognito encrypts with the pool's KMS key; Cognate needs its own stand-in, and
        // sending the code in the clear (or not at all, answering success) would be worse.
        return Err(ApiError::new(
            ErrorCode::UnexpectedLambdaException,
            format!(
                "{} invocation failed due to error Cognate has no key to encrypt the code with: \
                 start it with --custom-sender-key (base64 of 32 bytes).",
                sender.name()
            ),
        ));
    };
    let context = [("userpool-id".to_owned(), out.pool_id.to_owned())].into();
    let message = keyring.encrypt(code.as_bytes(), &context).map_err(ApiError::internal)?;
    let kind = match sender {
        Trigger::CustomSmsSender => "customSMSSenderRequestV1",
        _ => "customEmailSenderRequestV1",
    };
    Ok(json!({
        "type": kind,
        "code": base64::engine::general_purpose::STANDARD.encode(message),
        "userAttributes": user_attributes(out.user),
        "clientMetadata": client_metadata(ctx),
    }))
}

/// `message` as the pool's CustomMessage function rewrites it, if the pool has one.
async fn custom_message(ctx: &Ctx, out: &Outgoing<'_>, message: Message, code: &str) -> ApiResult<Message> {
    let Some(function) = Trigger::CustomMessage.function(out.pool.lambda_config.as_ref()) else {
        return Ok(message);
    };
    let invitation = out.occasion == Occasion::AdminCreateUser;
    let request = json!({
        "userAttributes": user_attributes(out.user),
        "codeParameter": CODE_PARAMETER,
        "usernameParameter": if invitation { json!(USERNAME_PARAMETER) } else { Value::Null },
        "clientMetadata": client_metadata(ctx),
    });
    let source = format!("CustomMessage_{}", out.occasion.name());
    let username = out.user.record.username.as_str();
    let event = Event {
        trigger: Trigger::CustomMessage,
        source: &source,
        pool_id: out.pool_id,
        user_name: username,
        client_id: out.client_id,
        version: "1",
        request,
    };
    let response = lambda::invoke(ctx, function, event).await?;
    Ok(apply_custom_message(message, &response, invitation, code, username))
}

/// The function's `emailMessage` and `emailSubject` (email) or `smsMessage` (SMS) in place
/// of the template's, the placeholders then filled in. A message without the code's
/// placeholder (or, in an invitation, the user name's), or an email body over 20,000
/// characters, cannot be sent as it is: Cognito then sends the template's message, and so
/// does Cognate. The subject is taken as it is (Cognito fills no placeholder there).
fn apply_custom_message(
    mut message: Message,
    response: &Map<String, Value>,
    invitation: bool,
    code: &str,
    username: &str,
) -> Message {
    let text = |name: &str| response.get(name).and_then(Value::as_str).filter(|t| !t.is_empty());
    let body = match message.channel {
        Channel::Email => text("emailMessage"),
        Channel::Sms => text("smsMessage"),
    };
    if let Some(body) = body {
        let placeholders = body.contains(CODE_PARAMETER) && (!invitation || body.contains(USERNAME_PARAMETER));
        let too_long = message.channel == Channel::Email && body.chars().count() > MAX_EMAIL_MESSAGE_CHARS;
        if !placeholders || too_long {
            tracing::warn!(
                placeholders,
                too_long,
                "the CustomMessage function's message cannot be sent; the pool's template is sent instead"
            );
            return message;
        }
        message.body = delivery::render(body, code, username);
    }
    if let (Channel::Email, Some(subject)) = (message.channel, text("emailSubject")) {
        message.subject = Some(subject.to_owned());
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(channel: Channel) -> Message {
        Message {
            channel,
            destination: "a@example.com".into(),
            code: Some("123456".into()),
            subject: Some("Your verification code".into()),
            body: "Your verification code is 123456. ".into(),
        }
    }

    fn response(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn the_functions_message_replaces_the_template_with_the_code_filled_in() {
        let answer = response(json!({"emailMessage": "Hi {username}: {####}", "emailSubject": "Welcome {####}"}));
        let message = apply_custom_message(template(Channel::Email), &answer, false, "123456", "bob");
        assert_eq!(message.body, "Hi bob: 123456");
        assert_eq!(message.subject.as_deref(), Some("Welcome {####}"), "no placeholder is filled in a subject");
        let answer = response(json!({"smsMessage": "Code {####}", "emailMessage": "ignored {####}"}));
        let message = apply_custom_message(template(Channel::Sms), &answer, false, "123456", "bob");
        assert_eq!(message.body, "Code 123456");
    }

    #[test]
    fn a_message_missing_its_placeholders_leaves_the_template() {
        let cases = [
            (json!({"emailMessage": "No code here", "emailSubject": "Hi"}), false),
            (json!({"emailMessage": "Code {####} but no name"}), true),
            (json!({"emailMessage": format!("{{####}}{}", "x".repeat(MAX_EMAIL_MESSAGE_CHARS))}), false),
        ];
        for (answer, invitation) in cases {
            let message = apply_custom_message(template(Channel::Email), &response(answer), invitation, "1", "bob");
            assert_eq!(message.body, "Your verification code is 123456. ");
            assert_eq!(message.subject.as_deref(), Some("Your verification code"));
        }
        let empty = apply_custom_message(template(Channel::Email), &Map::new(), false, "1", "bob");
        assert_eq!(empty.body, "Your verification code is 123456. ", "a function that changes nothing");
        let invitation = response(json!({"emailMessage": "{username} / {####}"}));
        let message = apply_custom_message(template(Channel::Email), &invitation, true, "Tmp-1", "bob");
        assert_eq!(message.body, "bob / Tmp-1");
    }
}
