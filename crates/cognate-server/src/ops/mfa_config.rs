//! A pool's MFA configuration: which factors exist (SMS, TOTP, email, WebAuthn) and whether
//! MFA is off, optional or required.

use cognate_api::idp::*;

use cognate_core::context::Ctx;
use cognate_core::error::{ApiError, ApiResult};
use cognate_core::records::*;

fn sms_mfa(pool: &UserPoolType) -> Option<SmsMfaConfigType> {
    pool.sms_configuration.as_ref().map(|sms| SmsMfaConfigType {
        sms_authentication_message: pool.sms_authentication_message.clone(),
        sms_configuration: Some(sms.clone()),
    })
}

fn view(doc: &PoolDoc) -> GetUserPoolMfaConfigResponse {
    GetUserPoolMfaConfigResponse {
        mfa_configuration: Some(doc.pool.mfa_configuration.clone().unwrap_or(UserPoolMfaType::Off)),
        sms_mfa_configuration: sms_mfa(&doc.pool),
        software_token_mfa_configuration: Some(SoftwareTokenMfaConfigType { enabled: Some(doc.software_token_mfa) }),
        email_mfa_configuration: doc.email_mfa.clone(),
        web_authn_configuration: doc.web_authn.clone(),
    }
}

pub async fn get_user_pool_mfa_config(
    ctx: Ctx,
    input: GetUserPoolMfaConfigRequest,
) -> ApiResult<GetUserPoolMfaConfigResponse> {
    let (_, doc) = load_pool(&ctx, &input.user_pool_id).await?;
    Ok(view(&doc))
}

pub async fn set_user_pool_mfa_config(
    ctx: Ctx,
    input: SetUserPoolMfaConfigRequest,
) -> ApiResult<SetUserPoolMfaConfigResponse> {
    let doc = modify_pool(&ctx, &input.user_pool_id, |doc| {
        if let Some(totp) = &input.software_token_mfa_configuration {
            doc.software_token_mfa = totp.enabled.unwrap_or(false);
        }
        if let Some(sms) = &input.sms_mfa_configuration {
            if let Some(message) = &sms.sms_authentication_message {
                doc.pool.sms_authentication_message = Some(message.clone());
            }
            if let Some(config) = &sms.sms_configuration {
                doc.pool.sms_configuration = Some(config.clone());
            }
        }
        if let Some(email) = &input.email_mfa_configuration {
            doc.email_mfa = Some(email.clone());
        }
        if let Some(web_authn) = &input.web_authn_configuration {
            let mut web_authn = web_authn.clone();
            web_authn.user_verification.get_or_insert(UserVerificationType::Preferred);
            doc.web_authn = Some(web_authn);
        }
        if let Some(mfa) = &input.mfa_configuration {
            let any_factor = doc.software_token_mfa || doc.pool.sms_configuration.is_some() || doc.email_mfa.is_some();
            if *mfa != UserPoolMfaType::Off && !any_factor {
                return Err(ApiError::invalid_parameter(
                    "Invalid MFA configuration given: MFA ON or OPTIONAL needs at least one of SMS, software token or email MFA configured.",
                ));
            }
            doc.pool.mfa_configuration = Some(mfa.clone());
        }
        Ok(())
    })
    .await?;
    let view = view(&doc);
    Ok(SetUserPoolMfaConfigResponse {
        mfa_configuration: view.mfa_configuration,
        sms_mfa_configuration: view.sms_mfa_configuration,
        software_token_mfa_configuration: view.software_token_mfa_configuration,
        email_mfa_configuration: view.email_mfa_configuration,
        web_authn_configuration: view.web_authn_configuration,
    })
}
