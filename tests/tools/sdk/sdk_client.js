'use strict';
// sdk_client.js: one federation request signed and sent by npm's
// @rocket.chat/federation-sdk (its makeSignedRequest: X-Matrix signing, its
// own resolution of the destination server name, HTTPS), for
// tests/integration/sdk_interop.sh.
//
// node sdk_client.js --name ORIGIN --key SIGNING_KEY_FILE --dest SERVER_NAME
//     --method GET|POST --uri PATH [--query QS] [--body JSON_FILE]
//     [--out FILE] [--header-out FILE] [--dry-run] [--pdus FIELD]
//
// --body: sent as the request's JSON body and signed as its content
// (makeSignedRequest's signedBody). The last line on stdout is the HTTP
// status (or "error: ..."); the answer goes to --out (the SDK's parse of it
// when the request succeeded, the raw bytes otherwise). --header-out gets
// the Authorization header the SDK put on the wire (observed at node's https
// layer, not recomputed). --dry-run: nothing is sent (the header is still
// written): a header the SDK made, for a test to replay on a tampered
// request. --pdus FIELD: each PDU in the answer's FIELD (pdus, events,
// auth_chain) is checked against the SDK's own room-version-10 PDU schema
// (roomV10Schemas, by event type, 'default' for the others), and a line
// "pdus: VALID/TOTAL valid" is printed before the status (a refusal reason
// for each invalid one on stderr).
const fs = require('fs');
const https = require('https');
const { PassThrough } = require('stream');
const lib = require('./sdk_lib.js');

const a = lib.args(process.argv.slice(2), ['name', 'key', 'dest', 'method', 'uri']);
const { sdk, mod } = lib.init({ name: a.name, keyFile: a.key });

// Observe what the SDK sends (and, with --dry-run, answer it here).
const seen = { status: undefined, body: [] };
const realRequest = https.request;
https.request = function (opts, cb) {
	const h = (opts && opts.headers) || {};
	if (a['header-out']) fs.writeFileSync(a['header-out'], (h.Authorization || h.authorization || '') + '\n');
	if (a['dry-run']) {
		const req = new PassThrough();
		req.setTimeout = () => req;
		req.end = () => {
			const res = new PassThrough();
			res.statusCode = 299;
			res.headers = { 'content-type': 'application/json' };
			cb(res);
			res.end('{}');
		};
		return req;
	}
	return realRequest.call(this, opts, (res) => {
		seen.status = res.statusCode;
		cb(res);
		res.on('data', (c) => seen.body.push(c));
	});
};

(async () => {
	const req = { method: a.method, domain: a.dest, uri: a.uri };
	if (a.query) req.queryString = a.query;
	if (a.body) req.signedBody = JSON.parse(fs.readFileSync(a.body, 'utf8'));
	try {
		const r = await sdk.makeSignedRequest(req);
		const status = r.status;
		const parsed = a['dry-run'] ? {} : await r.json();
		if (a.out) fs.writeFileSync(a.out, JSON.stringify(parsed));
		if (a.pdus) {
			const list = Array.isArray(parsed[a.pdus]) ? parsed[a.pdus] : [];
			let valid = 0;
			for (const p of list) {
				const schema = mod.roomV10Schemas[p && p.type] || mod.roomV10Schemas.default;
				const r = schema.safeParse(p);
				if (r.success) valid++;
				else process.stderr.write(`sdk_client: PDU of type ${p && p.type} refused by the SDK's schema: ${r.error.message}\n`);
			}
			process.stdout.write(`pdus: ${valid}/${list.length} valid\n`);
		}
		process.stdout.write(`${status}\n`);
	} catch (e) {
		if (a.out) fs.writeFileSync(a.out, Buffer.concat(seen.body));
		const status = e.response && e.response.status;
		process.stdout.write(status ? `${status}\n` : `error: ${e.message}\n`);
	}
})();
