// Drives the real amazon-cognito-identity-js SRP code for cognate-crypto's
// golden tests (tests/golden_clients.rs). Reads one JSON request on stdin and
// prints one JSON answer on stdout; it never touches the network: the
// library's HTTP client is replaced by a stub that plays the server from
// values the Rust test computed.
'use strict';

const {
	AuthenticationDetails,
	AuthenticationHelper,
	CognitoUser,
	CognitoUserPool,
} = require('amazon-cognito-identity-js');
const BigInteger = require('amazon-cognito-identity-js/lib/BigInteger').default;

function readStdin() {
	return new Promise((resolve, reject) => {
		let data = '';
		process.stdin.setEncoding('utf8');
		process.stdin.on('data', chunk => (data += chunk));
		process.stdin.on('end', () => resolve(data));
		process.stdin.on('error', reject);
	});
}

// The client's side of one exchange with a fixed `a`, through the same
// AuthenticationHelper calls CognitoUser makes.
function helperCase(c) {
	const helper = new AuthenticationHelper(c.pool_name);
	helper.smallAValue = new BigInteger(c.a_hex, 16);
	helper.largeAValue = undefined;
	let aPub;
	helper.getLargeAValue((err, value) => {
		if (err) throw err;
		aPub = value;
	});
	let key;
	helper.getPasswordAuthenticationKey(
		c.username,
		c.password,
		new BigInteger(c.b_hex, 16),
		new BigInteger(c.salt_hex, 16),
		(err, hkdf) => {
			if (err) throw err;
			key = Buffer.from(hkdf).toString('hex');
		}
	);
	if (aPub === undefined || key === undefined) {
		throw new Error('AuthenticationHelper did not call back synchronously');
	}
	return { a_pub_hex: aPub.toString(16), key_hex: key };
}

// ConfirmDevice's verifier generation. Runs until both salt shapes (with and
// without the 00 byte padHex adds for a set top bit) have been seen.
function deviceHashes(c) {
	const out = [];
	let padded = false;
	let unpadded = false;
	for (let i = 0; i < 64 && (out.length < c.min || !padded || !unpadded); i++) {
		const helper = new AuthenticationHelper(c.device_group_key);
		let done = false;
		helper.generateHashDevice(c.device_group_key, c.device_key, err => {
			if (err) throw err;
			done = true;
		});
		if (!done) throw new Error('generateHashDevice did not call back synchronously');
		const salt = helper.getSaltDevices();
		if (salt.startsWith('00')) padded = true;
		else unpadded = true;
		out.push({
			password: helper.getRandomPassword(),
			salt_hex: salt,
			verifier_hex: helper.getVerifierDevices(),
		});
	}
	return out;
}

// A whole USER_SRP_AUTH sign-in through CognitoUser.authenticateUser, with a
// stub client. With `device`, the stored device makes the client continue
// with DEVICE_SRP_AUTH / DEVICE_PASSWORD_VERIFIER. Resolves with every request
// the client sent.
function flow(f) {
	return new Promise(resolve => {
		const store = {};
		const storage = {
			setItem: (k, v) => (store[k] = String(v)),
			getItem: k => (k in store ? store[k] : null),
			removeItem: k => delete store[k],
			clear: () => Object.keys(store).forEach(k => delete store[k]),
		};
		if (f.device) {
			const prefix = `CognitoIdentityServiceProvider.${f.client_id}.${f.user_id_for_srp}`;
			storage.setItem(`${prefix}.deviceKey`, f.device.device_key);
			storage.setItem(`${prefix}.randomPasswordKey`, f.device.password);
			storage.setItem(`${prefix}.deviceGroupKey`, f.device.device_group_key);
		}
		const pool = new CognitoUserPool({
			UserPoolId: f.pool_id,
			ClientId: f.client_id,
			Storage: storage,
			AdvancedSecurityDataCollectionFlag: false,
		});
		const requests = [];
		const stop = { code: 'GoldenTestStop', name: 'GoldenTestStop', message: 'stop' };
		pool.client = {
			request(operation, params, callback) {
				requests.push({ operation, params: JSON.parse(JSON.stringify(params)) });
				const challenge = params.ChallengeName;
				if (operation === 'InitiateAuth') {
					return callback(null, {
						ChallengeName: 'PASSWORD_VERIFIER',
						ChallengeParameters: {
							SALT: f.salt_hex,
							SRP_B: f.b_hex,
							SECRET_BLOCK: f.secret_block,
							USER_ID_FOR_SRP: f.user_id_for_srp,
							USERNAME: f.user_id_for_srp,
						},
					});
				}
				if (challenge === 'PASSWORD_VERIFIER' && f.device) {
					return callback(null, {
						ChallengeName: 'DEVICE_SRP_AUTH',
						ChallengeParameters: {},
						Session: 'golden-session-1',
					});
				}
				if (challenge === 'DEVICE_SRP_AUTH') {
					return callback(null, {
						ChallengeName: 'DEVICE_PASSWORD_VERIFIER',
						ChallengeParameters: {
							SRP_B: f.device.b_hex,
							SALT: f.device.salt_hex,
							SECRET_BLOCK: f.device.secret_block,
							USERNAME: f.user_id_for_srp,
							DEVICE_KEY: f.device.device_key,
						},
						Session: 'golden-session-2',
					});
				}
				return callback(stop, null);
			},
		};
		const user = new CognitoUser({ Username: f.username, Pool: pool, Storage: storage });
		const details = new AuthenticationDetails({ Username: f.username, Password: f.password });
		const finish = err => resolve({ requests, error: err && err.code !== 'GoldenTestStop' ? String(err.message || err) : null });
		user.authenticateUser(details, {
			onSuccess: () => finish({ message: 'unexpected success' }),
			onFailure: finish,
			mfaRequired: () => finish({ message: 'unexpected mfaRequired' }),
			totpRequired: () => finish({ message: 'unexpected totpRequired' }),
			newPasswordRequired: () => finish({ message: 'unexpected newPasswordRequired' }),
			customChallenge: () => finish({ message: 'unexpected customChallenge' }),
		});
	});
}

async function main() {
	const input = JSON.parse(await readStdin());
	const out = {
		helper: input.helper.map(helperCase),
		device_hashes: deviceHashes(input.device_hashes),
		flows: [],
	};
	for (const f of input.flows) {
		out.flows.push(await flow(f));
	}
	process.stdout.write(JSON.stringify(out));
}

main().catch(err => {
	console.error(err && err.stack ? err.stack : String(err));
	process.exit(1);
});
