//! Message delivery: every message goes to the outbox (readable at `/_cognate/outbox` by
//! loopback clients and with `cognate outbox`); email also goes through SMTP when configured.
//! SMS has no sender yet: the outbox is where SMS codes are read.

use cognate_api::idp::{CodeDeliveryDetailsType, DeliveryMediumType, UserPoolType};
use cognate_store::OutboxMessage;

use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::settings::{SmtpConfig, SmtpSecurity};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn attribute(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "phone_number",
        }
    }

    /// The outbox's name of the channel.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Email => "EMAIL",
            Channel::Sms => "SMS",
        }
    }

    fn medium(self) -> DeliveryMediumType {
        match self {
            Channel::Email => DeliveryMediumType::Email,
            Channel::Sms => DeliveryMediumType::Sms,
        }
    }
}

/// A rendered message for one user.
pub struct Message {
    pub channel: Channel,
    pub destination: String,
    pub code: Option<String>,
    pub subject: Option<String>,
    pub body: String,
}

/// Which templates a message uses.
#[derive(Clone, Copy)]
pub enum Kind {
    Verification,
    PasswordReset,
    Invitation,
}

pub fn render(template: &str, code: &str, username: &str) -> String {
    template.replace("{####}", code).replace("{username}", username)
}

/// Renders a message from the pool's templates (or Cognito's defaults).
pub fn compose(
    pool: &UserPoolType,
    kind: Kind,
    channel: Channel,
    destination: &str,
    code: &str,
    username: &str,
) -> Message {
    let template = pool.verification_message_template.clone().unwrap_or_default();
    let invite =
        pool.admin_create_user_config.as_ref().and_then(|c| c.invite_message_template.clone()).unwrap_or_default();
    let (subject, body) = match (kind, channel) {
        (Kind::Invitation, Channel::Email) => (
            invite.email_subject.unwrap_or_else(|| "Your temporary password".into()),
            invite
                .email_message
                .unwrap_or_else(|| "Your username is {username} and temporary password is {####}. ".into()),
        ),
        (Kind::Invitation, Channel::Sms) => (
            String::new(),
            invite
                .sms_message
                .unwrap_or_else(|| "Your username is {username} and temporary password is {####}. ".into()),
        ),
        (Kind::Verification, Channel::Email) => (
            template.email_subject.unwrap_or_else(|| "Your verification code".into()),
            template.email_message.unwrap_or_else(|| "Your verification code is {####}. ".into()),
        ),
        (Kind::PasswordReset, Channel::Email) => (
            template.email_subject.unwrap_or_else(|| "Your password reset code".into()),
            template.email_message.unwrap_or_else(|| "Your password reset code is {####}. ".into()),
        ),
        (Kind::Verification, Channel::Sms) => {
            (String::new(), template.sms_message.unwrap_or_else(|| "Your verification code is {####}. ".into()))
        }
        (Kind::PasswordReset, Channel::Sms) => {
            (String::new(), template.sms_message.unwrap_or_else(|| "Your password reset code is {####}. ".into()))
        }
    };
    Message {
        channel,
        destination: destination.to_owned(),
        code: Some(code.to_owned()),
        subject: (channel == Channel::Email).then(|| render(&subject, code, username)),
        body: render(&body, code, username),
    }
}

/// Cognito's masked destination, e.g. `a***@e***` or `+*******0100`.
pub fn mask(channel: Channel, destination: &str) -> String {
    match channel {
        Channel::Email => {
            let (local, domain) = destination.rsplit_once('@').unwrap_or((destination, ""));
            let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
            format!("{}***@{}***", first(local), first(domain))
        }
        Channel::Sms => {
            let digits: Vec<char> = destination.chars().collect();
            let keep = digits.len().min(4);
            let hidden = digits.len().saturating_sub(keep + 1);
            let tail: String = digits[digits.len() - keep..].iter().collect();
            format!("+{}{tail}", "*".repeat(hidden))
        }
    }
}

pub fn details(channel: Channel, destination: &str) -> CodeDeliveryDetailsType {
    CodeDeliveryDetailsType {
        destination: Some(mask(channel, destination)),
        delivery_medium: Some(channel.medium()),
        attribute_name: Some(channel.attribute().to_owned()),
    }
}

/// Records the message in the outbox (sealed, pruning what the retention settings no longer
/// keep) and sends email through SMTP when configured. Call it
/// after the write the message reports has committed. An SMTP failure is an error
/// (CodeDeliveryFailureException where the operation models it); the outbox still has it.
pub async fn deliver(ctx: &Ctx, pool_id: &str, username: &str, message: Message) -> ApiResult<()> {
    let record = OutboxMessage {
        id: 0,
        pool_id: pool_id.to_owned(),
        username: username.to_owned(),
        channel: message.channel.name().into(),
        destination: message.destination.clone(),
        code: message.code.clone(),
        subject: message.subject.clone(),
        body: message.body.clone(),
        created_ms: ctx.now_ms(),
    };
    crate::outbox::append(ctx, record).await?;
    if let (Channel::Email, Some(smtp)) = (message.channel, ctx.settings().smtp.clone()) {
        let sent =
            tokio::task::spawn_blocking(move || send_email(&smtp, &message)).await.map_err(ApiError::internal)?;
        if let Err(reason) = sent {
            tracing::warn!(%reason, "email delivery failed");
            return Err(ApiError::new(
                cognate_api::ErrorCode::CodeDeliveryFailureException,
                "Unable to deliver the message.",
            ));
        }
    }
    Ok(())
}

fn send_email(smtp: &SmtpConfig, message: &Message) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{SmtpTransport, Transport};

    let email = lettre::Message::builder()
        .from(smtp.from.parse().map_err(|e| format!("from address: {e}"))?)
        .to(message.destination.parse().map_err(|e| format!("to address: {e}"))?)
        .subject(message.subject.clone().unwrap_or_default())
        .header(ContentType::TEXT_PLAIN)
        .body(message.body.clone())
        .map_err(|e| e.to_string())?;
    let builder = match smtp.security {
        SmtpSecurity::Tls => SmtpTransport::relay(&smtp.host).map_err(|e| e.to_string())?,
        SmtpSecurity::Starttls => SmtpTransport::starttls_relay(&smtp.host).map_err(|e| e.to_string())?,
        SmtpSecurity::None => SmtpTransport::builder_dangerous(&smtp.host),
    };
    let mut builder = builder.port(smtp.port).timeout(Some(std::time::Duration::from_secs(10)));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().clone()));
    }
    builder.build().send(&email).map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_masked_like_cognito() {
        assert_eq!(mask(Channel::Email, "alice@example.com"), "a***@e***");
        assert_eq!(mask(Channel::Sms, "+15555550100"), "+*******0100");
    }

    #[test]
    fn templates_substitute_code_and_username() {
        assert_eq!(render("Hi {username}, code {####}", "123456", "bob"), "Hi bob, code 123456");
    }
}
