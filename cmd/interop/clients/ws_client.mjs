// One session of the interop matrix with Node's ws package (npm): the
// session is argv[2] as JSON (see caseJSON in matrix_test.go); prints one
// JSON event per line. The Go test judges the events; this script only
// does what it is told and reports what it saw.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const c = JSON.parse(process.argv[2]);
const out = (ev) => process.stdout.write(JSON.stringify(ev) + '\n');
const fail = (err) => {
	out({ ev: 'error', msg: String(err && err.stack || err) });
	process.exit(1);
};

const ws = new WebSocket(c.url, c.subprotocols, {
	perMessageDeflate: c.compress, // ws's offer: permessage-deflate; client_max_window_bits
	ca: c.ca ? readFileSync(c.ca) : undefined,
	maxPayload: 64 << 20,
	handshakeTimeout: 10000,
});

// Messages, pongs and the close arrive as events; each step waits for
// the one it needs.
const messages = [];
const pongs = [];
let waiter = null;
let pings = 0;
let closed = null;
const wake = () => { if (waiter) { const w = waiter; waiter = null; w(); } };
const until = (ready) => new Promise((resolve, reject) => {
	const check = () => {
		const v = ready();
		if (v !== undefined) return resolve(v);
		if (closed) return reject(new Error(`link closed: ${closed.code} ${closed.reason}`));
		waiter = check;
	};
	check();
});
ws.on('message', (data, isBinary) => { messages.push({ data, isBinary }); wake(); });
ws.on('pong', (data) => { pongs.push(data); wake(); });
ws.on('ping', () => { pings++; });
ws.on('close', (code, reason) => { closed = { code, reason: reason.toString() }; wake(); });
ws.on('error', (err) => { if (!closed) fail(err); });
const nextMessage = () => until(() => messages.shift());
const closeEvent = () => new Promise((resolve) => {
	const check = () => closed ? resolve({ ev: 'closed', code: closed.code, reason: closed.reason }) : (waiter = check);
	check();
});
const send = (data, opts) => new Promise((resolve, reject) => ws.send(data, opts, (err) => err ? reject(err) : resolve()));
const sha256 = (b) => createHash('sha256').update(b).digest('hex');

async function step(st) {
	switch (st.op) {
	case 'info':
		await send('{"action":"info"}', { binary: false });
		return { ev: 'info', text: (await nextMessage()).data.toString() };
	case 'echo': {
		const data = readFileSync(st.file);
		const binary = st.type === 'binary';
		if (st.splits) {
			const at = [0, ...st.splits, data.length];
			for (let i = 0; i + 1 < at.length; i++) {
				await send(data.subarray(at[i], at[i + 1]), { binary, fin: i + 2 === at.length });
			}
		} else {
			await send(data, { binary });
		}
		const m = await nextMessage();
		return { ev: 'echo', type: m.isBinary ? 'binary' : 'text', len: m.data.length, sha256: sha256(m.data) };
	}
	case 'send':
		// A refused message may end the link before it is all written;
		// the close that follows is the verdict.
		await send(st.file ? readFileSync(st.file) : st.text, { binary: st.type === 'binary' }).catch(() => {});
		return { ev: 'sent' };
	case 'ping': {
		const data = st.data ?? '';
		ws.ping(Buffer.from(data));
		const p = await until(() => pongs.shift());
		return { ev: 'pong', sent: data, data: p.toString() };
	}
	case 'idle': {
		const before = pings;
		await new Promise((r) => setTimeout(r, st.ms));
		return { ev: 'idle', pings: pings - before };
	}
	case 'close':
		ws.close(st.code, st.reason ?? '');
		return closeEvent();
	case 'await_close':
		out({ ev: 'waiting' });
		return closeEvent();
	default:
		throw new Error(`unknown step ${st.op}`);
	}
}

ws.on('open', async () => {
	try {
		out({ ev: 'open', protocol: ws.protocol, extensions: ws.extensions });
		for (const st of c.steps) out(await step(st));
		process.exit(0);
	} catch (err) {
		fail(err);
	}
});
