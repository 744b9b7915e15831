// Drive `mmload sim` with Mattermost's own JavaScript client (@mattermost/client): Client4 for
// login and the web app's initial-load calls, WebSocketClient for hello, ping/pong and a posted
// event after Client4.createPost. Prints one JSON object of what the client returned; the
// pytest (tests/sim/test_js_client.py) asserts on it. Usage: node check.js <url> <user> <pass>
'use strict';

const WS = require('ws');

globalThis.WebSocket = globalThis.WebSocket || WS; // Node 20 has no global WebSocket
const {Client4, WebSocketClient} = require('@mattermost/client');

const [url, loginId, password] = process.argv.slice(2);
// a hang guard (the run takes a second or two; a busy machine several times that)
const deadline = setTimeout(() => fail(new Error('timed out')), 60000);

// Polls until done() (every 50 ms, up to 30 s: returns as soon as it is true).
async function until(done) {
    for (let i = 0; i < 600 && !done(); i++) {
        await new Promise((r) => setTimeout(r, 50));
    }
}

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

    // The browser sends its session cookie on the upgrade; the header does the same here, so
    // the server can resume this connection after a drop (a challenge-only socket cannot).
    const upgradeAuth = {headers: {Authorization: `Bearer ${client.getToken()}`}};
    const ws = new WebSocketClient({
        newWebSocketFn: (u) => new WS(u, [], upgradeAuth),
        clientPingInterval: 60000,
        minWebSocketRetryTime: 200,
        reconnectJitterRange: 0,
    });
    const events = [];
    ws.addMessageListener((msg) => { events.push(msg); if (process.env.DEBUG_WS) console.error('EVT', JSON.stringify(msg).slice(0, 160)); });
    // As the web app does, listen for "missed events" before connecting: the client only
    // keeps the hello's connection id (and so can resume) when someone listens.
    let missed = 0;
    ws.addMissedMessageListener(() => missed++);
    const connected = once((resolve) => ws.addFirstConnectListener(resolve));
    ws.initialize(url.replace(/^http/, 'ws') + '/api/v4/websocket', client.getToken());
    await connected;
    await until(() => events.some((e) => e.event === 'hello'));
    const hello = events.find((e) => e.event === 'hello');
    out.hello = hello ? {seq: hello.seq, connection_id: hello.data.connection_id, server_version: hello.data.server_version} : null;
    const pong = await once((resolve) => ws.ping(resolve));
    out.pong = {status: pong.status, text: pong.data && pong.data.text, version: pong.data && pong.data.version};

    const created = await client.createPost({channel_id: town.id, message: 'hello from Client4'});
    out.created = {id: created.id, message: created.message};
    await until(() => events.some((e) => e.event === 'posted'));
    const posted = events.find((e) => e.event === 'posted');
    out.posted = posted ? {seq: posted.seq, channel_id: posted.broadcast.channel_id, post: JSON.parse(posted.data.post)} : null;
    out.reaction = (await client.addReaction(me.id, created.id, 'tada')).emoji_name;
    out.thread = (await client.getPostThread(created.id)).order;

    // The 11.x web app's initial load and ltng's actions, through Client4.
    const team = teams[0];
    out.allChannels = (await client.getAllTeamsChannels()).map((c) => c.name);
    out.allMembers = (await client.getAllChannelsMembers(me.id, 0, 200)).length;
    const cats = await client.getChannelCategories(me.id, team.id);
    out.categories = cats.categories.map((c) => c.type);
    out.unreadPosts = (await client.getPostsUnread(town.id, me.id)).order.length;
    out.plugins = await client.getWebappPlugins();
    out.limits = (await client.getServerLimits()).data;
    out.autocomplete = (await client.autocompleteUsers('user-1', team.id, town.id)).users.length > 0;
    const connId = ws.connectionId;
    const draft = await client.upsertDraft({channel_id: town.id, root_id: '', message: 'draft', user_id: me.id}, connId);
    out.draft = draft.message;
    out.drafts = (await client.getUserDrafts(team.id)).length;
    out.draftDeleted = (await client.deleteDraft(town.id, '', connId)).status;
    const reply = await client.createPost({channel_id: town.id, message: 'a reply', root_id: created.id});
    out.threadRead = (await client.updateThreadReadForUser(me.id, team.id, created.id, reply.create_at)).last_viewed_at;
    const scheduled = await client.createScheduledPost({channel_id: town.id, message: 'later', scheduled_at: Date.now() + 3600000}, connId);
    out.scheduled = scheduled.data.message;
    out.teamScheduled = (await client.getScheduledPosts(team.id, true)).data[team.id].length;
    out.bookmarks = (await client.getChannelBookmarks(town.id)).length;
    out.searchAll = (await client.searchPostsWithParams('', {terms: 'Client4', is_or_search: false})).order.length;
    out.patched = (await client.patchPost({id: created.id, message: 'edited by Client4'})).message;
    out.statuses2 = (await client.getStatusesByIds([me.id])).length;
    const now = Date.now();
    out.perf = (await client.doFetch(client.getClientMetricsRoute(), {method: 'post', body: JSON.stringify({version: '0.1.0', client_id: 'check', labels: {platform: 'other', agent: 'other'}, start: now - 60000, end: now, counters: [], histograms: []})})).status;
    out.typing = await once((resolve) => ws.userTyping(town.id, '', resolve)).then((r) => r.status);

    // Resume: drop the socket, post while it is away, let WebSocketClient reconnect with its
    // connection_id and sequence_number; the missed posted event arrives, no "missed events".
    const reconnected = once((resolve) => ws.addReconnectListener(resolve));
    const idBefore = ws.connectionId;
    ws.conn.close();
    await new Promise((r) => setTimeout(r, 100));
    const whileAway = await client.createPost({channel_id: town.id, message: 'while away'});
    await reconnected;
    await until(() => events.some((e) => e.event === 'posted' && JSON.parse(e.data.post).id === whileAway.id));
    const replayed = events.find((e) => e.event === 'posted' && JSON.parse(e.data.post).id === whileAway.id);
    out.resume = {sameId: ws.connectionId === idBefore, missed, replayed: Boolean(replayed), seq: replayed ? replayed.seq : null};
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
