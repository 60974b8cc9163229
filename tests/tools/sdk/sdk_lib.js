'use strict';
// sdk_lib.js: load npm's @rocket.chat/federation-sdk (an independent
// TypeScript Matrix federation implementation) without MongoDB, for the
// interoperability tests (tests/integration/sdk_interop.sh).
//
// The SDK resolves its stores from tsyringe's global container; the only one
// the parts used here touch is 'ServerCollection' (the cache of other
// servers' public keys: findOne / findOneAndUpdate), which is registered as
// an in-memory object BEFORE the SDK is loaded. Everything else (signing,
// the key document, request verification, server-name resolution, HTTPS) is
// the SDK's own code, unchanged. The modules are found through NODE_PATH
// (the test sets it to $FP_NODE_MODULES).
//
// init({name, keyFile, port}) -> {sdk, keys, version}: keyFile is a
// Synapse-format signing key file ("ed25519 VERSION SEED", what `fedctl
// keygen` writes), handed to the SDK's setConfig as is.

if (!process.env.LOG_LEVEL) process.env.LOG_LEVEL = 'warn';
require('reflect-metadata');
const fs = require('fs');
const { container } = require('tsyringe');

// A minimal in-memory stand-in for the MongoDB collection the SDK's server
// repository uses: documents matched on their top-level fields; $set with
// dotted paths; upsert.
class MemCollection {
	constructor() { this.docs = []; }
	match(d, q) { return Object.keys(q).every((k) => d[k] === q[k]); }
	async findOne(q) { return this.docs.find((d) => this.match(d, q)) || null; }
	async findOneAndUpdate(q, upd, opts) {
		let d = this.docs.find((x) => this.match(x, q));
		const before = d ? JSON.parse(JSON.stringify(d)) : null;
		if (!d) {
			if (!(opts && opts.upsert)) return null;
			d = { ...q };
			this.docs.push(d);
		}
		for (const [path, v] of Object.entries((upd && upd.$set) || {})) {
			const parts = path.split('.');
			let o = d;
			for (const p of parts.slice(0, -1)) o = o[p] = o[p] && typeof o[p] === 'object' ? o[p] : {};
			o[parts[parts.length - 1]] = v;
		}
		return opts && opts.returnDocument === 'after' ? d : before;
	}
}

function init({ name, keyFile, port }) {
	const keys = new MemCollection();
	container.register('ServerCollection', { useValue: keys });
	const mod = require('@rocket.chat/federation-sdk');
	const path = require('path');
	const pkg = path.join(path.dirname(require.resolve('@rocket.chat/federation-sdk')), '..', 'package.json');
	const version = JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
	const sdk = mod.federationSDK;
	sdk.setConfig({
		instanceId: 'fedpipe-interop',
		serverName: name,
		port: port || 8448,
		version,
		matrixDomain: name,
		keyRefreshInterval: 60,
		signingKey: fs.readFileSync(keyFile, 'utf8').trim(),
		signingKeyPath: keyFile,
		media: {
			maxFileSize: 1, allowedMimeTypes: [], enableThumbnails: false,
			rateLimits: { uploadPerMinute: 1, downloadPerMinute: 1 },
		},
		invite: { allowedEncryptedRooms: false, allowedNonPrivateRooms: false },
		edu: { processTyping: false, processPresence: false },
	});
	return { sdk, keys, version, mod };
}

// args(argv, spec): --name value pairs into an object; spec lists the
// required names.
function args(argv, required) {
	const a = {};
	for (let i = 0; i < argv.length; i++) {
		if (!argv[i].startsWith('--')) throw new Error(`unexpected argument ${argv[i]}`);
		const k = argv[i].slice(2);
		if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) a[k] = true;
		else a[k] = argv[++i];
	}
	for (const r of required) if (a[r] === undefined) throw new Error(`--${r} is required`);
	return a;
}

module.exports = { init, args, MemCollection };
