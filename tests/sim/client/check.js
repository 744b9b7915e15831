// Drive `mmload sim` with Mattermost's own JavaScript client (@mattermost/client): Client4 for
// login and the web app's initial-load calls, WebSocketClient for hello, ping/pong and a posted
// event after Client4.createPost. Prints one JSON object of what the client returned; the
// pytest (tests/sim/test_js_client.py) asserts on it. Usage: node check.js <url> <user> <pass>
'use strict';

const WS = require('ws');

globalThis.WebSocket = globalThis.WebSocket || WS; // Node 20 has no global WebSocket
const {Client4, WebSocketClient} = require('@mattermost/client');

const [url, loginId, password] = process.argv.slice(2);
const deadline = setTimeout(() => fail(new Error('timed out')), 20000);

function fail(err) {
    process.stdout.write(JSON.stringify({error: String(err && err.message ? err.message : err)}) + '\n');
    process.exit(1);
}

function once(register) {
    return new Promise((resolve) => register(resolve));
}

async function main() {
    const client = new Client4();
    client.setUrl(url);
    const out = {};

    out.config = await client.getClientConfig();
    out.license = await client.getClientLicenseOld();
    const me = await client.login(loginId, password);
    out.login = {id: me.id, username: me.username, token: client.getToken()};
    out.me = (await client.getMe()).username;
    out.preferences = (await client.getMyPreferences()).length;
    const teams = await client.getMyTeams();
    out.teams = teams.map((t) => t.name);
    out.teamMembers = (await client.getMyTeamMembers()).map((m) => m.team_id === teams[0].id);
    out.unreads = (await client.getMyTeamUnreads()).map((u) => u.team_id === teams[0].id);
    out.roles = (await client.getRolesByNames(['system_user', 'team_user', 'channel_user'])).map((r) => r.name).sort();
    const channels = await client.getMyChannels(teams[0].id);
    out.channels = channels.map((c) => c.name);
    out.channelMembers = (await client.getMyChannelMembers(teams[0].id)).length;
    const town = channels.find((c) => c.name === 'town-square');
    out.view = (await client.viewMyChannel(town.id)).status;
    const posts = await client.getPosts(town.id, 0, 30);
    out.postCount = posts.order.length;
    out.statuses = (await client.getStatusesByIds([me.id])).map((s) => s.status);
    out.status = (await client.getStatus(me.id)).status;
    out.channel = (await client.getChannel(town.id)).name;
    out.channelStats = (await client.getChannelStats(town.id)).member_count;
    out.myMember = (await client.getMyChannelMember(town.id)).channel_id === town.id;

    const ws = new WebSocketClient({newWebSocketFn: (u) => new WS(u), clientPingInterval: 60000});
    const events = [];
    ws.addMessageListener((msg) => events.push(msg));
    const connected = once((resolve) => ws.addFirstConnectListener(resolve));
    ws.initialize(url.replace(/^http/, 'ws') + '/api/v4/websocket', client.getToken());
    await connected;
    await new Promise((r) => setTimeout(r, 100));
    const hello = events.find((e) => e.event === 'hello');
    out.hello = hello ? {seq: hello.seq, connection_id: hello.data.connection_id, server_version: hello.data.server_version} : null;
    const pong = await once((resolve) => ws.ping(resolve));
    out.pong = {status: pong.status, text: pong.data && pong.data.text, version: pong.data && pong.data.version};

    const created = await client.createPost({channel_id: town.id, message: 'hello from Client4'});
    out.created = {id: created.id, message: created.message};
    for (let i = 0; i < 50 && !events.some((e) => e.event === 'posted'); i++) {
        await new Promise((r) => setTimeout(r, 50));
    }
    const posted = events.find((e) => e.event === 'posted');
    out.posted = posted ? {seq: posted.seq, channel_id: posted.broadcast.channel_id, post: JSON.parse(posted.data.post)} : null;
    out.reaction = (await client.addReaction(me.id, created.id, 'tada')).emoji_name;
    out.thread = (await client.getPostThread(created.id)).order;
    ws.close();

    await client.logout();
    try {
        await client.getMe();
        out.afterLogout = 'still logged in';
    } catch (err) {
        out.afterLogout = {status: err.status_code, id: err.server_error_id};
    }
    clearTimeout(deadline);
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exit(0);
}

main().catch(fail);
