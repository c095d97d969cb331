//! SignUp, ConfirmSignUp, ResendConfirmationCode, ForgotPassword and ConfirmForgotPassword:
//! the app client and its SECRET_HASH checked, then `cognate_core::account`.

use cognate_api::idp::*;
use cognate_core::account;
use cognate_core::clients::client_call;
use cognate_core::{ApiResult, Ctx};

pub async fn sign_up(ctx: Ctx, input: SignUpRequest) -> ApiResult<SignUpResponse> {
    let login = input.username.expose();
    let call = client_call(&ctx, &input.client_id, input.secret_hash.as_ref(), login).await?;
    let password = input.password.as_ref().map(|p| p.expose().as_str());
    let attributes = input.user_attributes.as_deref().unwrap_or_default();
    let validation_data = input.validation_data.as_deref().unwrap_or_default();
    let signed_up = account::sign_up(&ctx, &call, login, password, (attributes, validation_data)).await?;
    Ok(SignUpResponse {
        user_confirmed: signed_up.confirmed,
        code_delivery_details: signed_up.code_delivery,
        user_sub: signed_up.sub,
        session: None,
    })
}

pub async fn confirm_sign_up(ctx: Ctx, input: ConfirmSignUpRequest) -> ApiResult<ConfirmSignUpResponse> {
    let login = input.username.expose();
    let call = client_call(&ctx, &input.client_id, input.secret_hash.as_ref(), login).await?;
    let force = input.force_alias_creation == Some(true);
    account::confirm_sign_up(&ctx, &call, login, &input.confirmation_code, force).await?;
    Ok(ConfirmSignUpResponse { session: None })
}

pub async fn resend_confirmation_code(
    ctx: Ctx,
    input: ResendConfirmationCodeRequest,
) -> ApiResult<ResendConfirmationCodeResponse> {
    let login = input.username.expose();
    let call = client_call(&ctx, &input.client_id, input.secret_hash.as_ref(), login).await?;
    let code_delivery_details = account::resend_confirmation_code(&ctx, &call, login).await?;
    Ok(ResendConfirmationCodeResponse { code_delivery_details })
}

pub async fn forgot_password(ctx: Ctx, input: ForgotPasswordRequest) -> ApiResult<ForgotPasswordResponse> {
    let login = input.username.expose();
    let call = client_call(&ctx, &input.client_id, input.secret_hash.as_ref(), login).await?;
    let details = account::forgot_password(&ctx, &call, login).await?;
    Ok(ForgotPasswordResponse { code_delivery_details: Some(details) })
}

pub async fn confirm_forgot_password(
    ctx: Ctx,
    input: ConfirmForgotPasswordRequest,
) -> ApiResult<ConfirmForgotPasswordResponse> {
    let login = input.username.expose();
    let call = client_call(&ctx, &input.client_id, input.secret_hash.as_ref(), login).await?;
    let (code, password) = (&input.confirmation_code, input.password.expose());
    account::confirm_forgot_password(&ctx, &call, login, code, password).await?;
    Ok(ConfirmForgotPasswordResponse {})
}
