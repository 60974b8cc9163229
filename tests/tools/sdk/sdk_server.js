'use strict';
// sdk_server.js: a Matrix federation server on 127.0.0.1, over HTTPS only,
// whose authentication is npm's @rocket.chat/federation-sdk's (loaded by
// sdk_lib.js), for tests/integration/sdk_interop.sh.
//
//   GET /_matrix/key/v2/server   the SDK's getSignedServerKey() document
//                                (this server's own key, self-signed by the SDK)
//   /_matrix/federation/v1/...   every request goes through the SDK's
//                                verifyRequestSignature(authHeader, method,
//                                uri, body) first (which fetches the origin's
//                                key over HTTPS with the SDK's own resolution
//                                of the origin's server name); refused: 401
//                                M_UNAUTHORIZED; accepted: answered from
//                                --events (JSON lines of PDUs, IDs in --ids):
//                                event, state_ids, event_auth,
//                                get_missing_events (POST), backfill
//
// Every request is logged to --log as one JSON line: method, target, every
// Authorization value received, and the verdict ("ok" with the origin the
// SDK returned, "refused", or "open" for the key endpoint), and after an
// accepted request the SDK's cache of other servers' keys (key_cache: name ->
// key ID -> {key, validUntil}), i.e. the key it verified with.
//
// node sdk_server.js --name NAME --key SIGNING_KEY_FILE --cert PEM --tls-key PEM
//     --port-file FILE --log FILE [--events FILE --ids FILE] [--listen-port N]
const fs = require('fs');
const https = require('https');
const lib = require('./sdk_lib.js');

const a = lib.args(process.argv.slice(2), ['name', 'key', 'cert', 'tls-key', 'port-file', 'log']);
const { sdk, version, keys } = lib.init({ name: a.name, keyFile: a.key, port: Number(a['listen-port'] || 0) || 8448 });
const lines = (f) => (f ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.trim()) : []);
const pdus = lines(a.events).map((l) => JSON.parse(l));
const ids = a.ids ? lines(a.ids).map((l) => l.trim()) : pdus.map((p) => p.event_id);
const logf = fs.openSync(a.log, 'a');
const log = (rec) => fs.writeSync(logf, JSON.stringify(rec) + '\n');

function reply(res, status, obj) {
	const out = Buffer.from(JSON.stringify(obj));
	res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': out.length });
	res.end(out);
}

async function handle(req, res, body) {
	const target = req.url;
	const path = target.split('?')[0];
	const auth = req.headersDistinct.authorization || [];
	const rec = { method: req.method, target, authorization: auth };
	if (path === '/_matrix/key/v2/server') {
		rec.verdict = 'open';
		log(rec);
		return reply(res, 200, await sdk.getSignedServerKey());
	}
	if (!path.startsWith('/_matrix/federation/')) {
		rec.verdict = 'not found';
		log(rec);
		return reply(res, 404, { errcode: 'M_NOT_FOUND', error: 'not here' });
	}
	let content;
	if (body.length) {
		try {
			content = JSON.parse(body.toString('utf8'));
		} catch (e) {
			rec.verdict = 'body is not JSON';
			log(rec);
			return reply(res, 400, { errcode: 'M_NOT_JSON', error: 'body is not JSON' });
		}
	}
	// The SDK takes one header value; a real server hands it the X-Matrix one.
	const xm = auth.find((v) => /^x-matrix /i.test(v)) || auth[0];
	const origin = await sdk.verifyRequestSignature(xm, req.method, target, content);
	if (!origin) {
		rec.verdict = 'refused';
		log(rec);
		return reply(res, 401, { errcode: 'M_UNAUTHORIZED', error: 'the SDK refused the request signature' });
	}
	rec.verdict = 'ok';
	rec.origin = origin;
	// the SDK's key cache after verifying: the key it verified with
	rec.key_cache = Object.fromEntries(keys.docs.map((d) => [d.name, d.keys]));
	log(rec);
	const q = new URLSearchParams(target.includes('?') ? target.slice(target.indexOf('?') + 1) : '');
	const parts = path.split('/').map((p) => decodeURIComponent(p));
	const fed = '/_matrix/federation/v1/';
	const ts = Date.now();
	if (path.startsWith(fed + 'event/')) {
		const i = ids.indexOf(parts[parts.length - 1]);
		if (i < 0) return reply(res, 404, { errcode: 'M_NOT_FOUND', error: 'no such event' });
		return reply(res, 200, { origin: a.name, origin_server_ts: ts, pdus: [pdus[i]] });
	}
	if (path.startsWith(fed + 'state_ids/'))
		return reply(res, 200, { pdu_ids: ids.slice(), auth_chain_ids: [] });
	if (path.startsWith(fed + 'event_auth/'))
		return reply(res, 200, { auth_chain: pdus.slice(0, 1) });
	if (path.startsWith(fed + 'get_missing_events/') && req.method === 'POST')
		return reply(res, 200, { events: pdus.slice(0, 1) });
	if (path.startsWith(fed + 'backfill/'))
		return reply(res, 200, { origin: a.name, origin_server_ts: ts, pdus: pdus.slice(0, Number(q.get('limit') || 1)) });
	return reply(res, 404, { errcode: 'M_UNRECOGNIZED', error: 'not served here' });
}

const srv = https.createServer({
	cert: fs.readFileSync(a.cert), key: fs.readFileSync(a['tls-key']), minVersion: 'TLSv1.2',
}, (req, res) => {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		handle(req, res, Buffer.concat(chunks)).catch((e) => {
			log({ method: req.method, target: req.url, verdict: 'error: ' + e.message });
			reply(res, 500, { errcode: 'M_UNKNOWN', error: e.message });
		});
	});
});
srv.listen(Number(a['listen-port'] || 0), '127.0.0.1', () => {
	fs.writeFileSync(a['port-file'] + '.tmp', String(srv.address().port));
	fs.renameSync(a['port-file'] + '.tmp', a['port-file']);
	process.stderr.write(`sdk_server: ${a.name} on https://127.0.0.1:${srv.address().port} (@rocket.chat/federation-sdk ${version}, node ${process.version})\n`);
});
process.on('SIGTERM', () => process.exit(0));
