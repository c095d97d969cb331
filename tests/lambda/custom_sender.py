"""CustomEmailSender and CustomSMSSender: decrypts the code as a function for Cognito does,
with the AWS Encryption SDK, here through a raw AES keyring (a RawMasterKey) over the key in
CUSTOM_SENDER_KEY (base64; the namespace and name Cognate uses by default) instead of Cognito's
KMS key; returns what it would send (Cognate ignores a sender's answer; the test host keeps it).
ClientMetadata `sleep` makes it take that many seconds first."""

import base64
import os
import time

import aws_encryption_sdk
from aws_encryption_sdk.identifiers import CommitmentPolicy, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKey


def handler(event, context):
    request = event["request"]
    time.sleep(float((request.get("clientMetadata") or {}).get("sleep", "0")))
    key = RawMasterKey(
        provider_id=os.environ.get("CUSTOM_SENDER_KEY_NAMESPACE", "cognate"),
        key_id=os.environ.get("CUSTOM_SENDER_KEY_NAME", "custom-sender").encode(),
        wrapping_key=WrappingKey(
            wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
            wrapping_key=base64.b64decode(os.environ["CUSTOM_SENDER_KEY"]),
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        ),
    )
    # The SDK's default policy: only key-committing messages decrypt.
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    plaintext, header = client.decrypt(source=base64.b64decode(request["code"]), key_provider=key)
    return {
        "type": request["type"],
        "code": plaintext.decode(),
        "encryptionContext": header.encryption_context,
        "algorithm": header.algorithm.name,
    }
