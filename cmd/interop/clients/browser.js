// One session of the interop matrix with the browser's WebSocket
// (Chromium): the Go test loads this page and calls runCase with the
// session (see caseJSON in matrix_test.go); each event goes to Go through
// window.lwsEmit. Payloads come from the page's server (/payload/NAME).
// A browser cannot choose its permessage-deflate offer (it always makes
// one), fragment a message or send a ping; those steps are not given to it.
'use strict';

async function runCase(c) {
	const emit = (ev) => window.lwsEmit(ev);
	const payload = async (file, type) => {
		const r = await fetch('/payload/' + file.split('/').pop());
		if (!r.ok) throw new Error(`payload ${file}: ${r.status}`);
		const b = await r.arrayBuffer();
		return type === 'text' ? new TextDecoder('utf-8', { fatal: true }).decode(b) : b;
	};
	const hex = (buf) => Array.from(new Uint8Array(buf), (x) => x.toString(16).padStart(2, '0')).join('');

	const ws = new WebSocket(c.url, c.subprotocols);
	ws.binaryType = 'arraybuffer';
	const messages = [];
	let closed = null;
	let waiter = null;
	const wake = () => { if (waiter) { const w = waiter; waiter = null; w(); } };
	ws.onopen = wake;
	ws.onmessage = (e) => { messages.push(e.data); wake(); };
	ws.onclose = (e) => { closed = { code: e.code, reason: e.reason }; wake(); };
	const until = (ready) => new Promise((resolve, reject) => {
		const check = () => {
			const v = ready();
			if (v !== undefined) return resolve(v);
			if (closed) return reject(new Error(`link closed: ${closed.code} ${closed.reason}`));
			waiter = check;
		};
		check();
	});
	const closeEvent = () => new Promise((resolve) => {
		const check = () => closed ? resolve({ ev: 'closed', code: closed.code, reason: closed.reason }) : (waiter = check);
		check();
	});

	try {
		await until(() => ws.readyState === WebSocket.OPEN ? true : undefined);
	} catch (err) {
		await emit({ ev: 'error', msg: 'could not connect: ' + err.message });
		return false;
	}
	await emit({ ev: 'open', protocol: ws.protocol, extensions: ws.extensions });

	const step = async (st) => {
		switch (st.op) {
		case 'info':
			ws.send('{"action":"info"}');
			return { ev: 'info', text: await until(() => messages.shift()) };
		case 'echo': {
			ws.send(await payload(st.file, st.type));
			const m = await until(() => messages.shift());
			const bytes = typeof m === 'string' ? new TextEncoder().encode(m) : new Uint8Array(m);
			return {
				ev: 'echo', type: typeof m === 'string' ? 'text' : 'binary', len: bytes.length,
				sha256: hex(await crypto.subtle.digest('SHA-256', bytes)),
			};
		}
		case 'send':
			ws.send(st.file ? await payload(st.file, st.type) : st.text);
			return { ev: 'sent' };
		case 'idle':
			// The browser answers the server's pings itself and does not tell.
			await new Promise((r) => setTimeout(r, st.ms));
			return { ev: 'idle', pings: -1 };
		case 'close':
			ws.close(st.code, st.reason ?? '');
			return closeEvent();
		case 'await_close':
			await emit({ ev: 'waiting' });
			return closeEvent();
		default:
			throw new Error(`unknown step ${st.op}`);
		}
	};
	try {
		for (const st of c.steps) await emit(await step(st));
	} catch (err) {
		await emit({ ev: 'error', msg: String(err && err.message || err) });
	}
	return true;
}
