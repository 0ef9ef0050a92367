/**
 * A ProxyCommand for ssh that puts a network's latency on a loopback connection:
 * `node delay-proxy.mjs HOST PORT MS` connects to HOST:PORT and relays stdin to
 * it and it to stdout, each chunk held MS milliseconds first, in order (timers
 * of one delay fire in the order they were set). The bench mounts sshfs through
 * it so every SFTP round trip costs what it costs to a NAS, not a loopback's
 * few microseconds. Exits when either side closes.
 */
import { connect } from 'node:net';

const [host, port, ms] = process.argv.slice(2);
const delay = Number(ms);
if (!host || !Number.isInteger(Number(port)) || !(delay >= 0)) {
  console.error('usage: delay-proxy.mjs HOST PORT MS');
  process.exit(2);
}
const socket = connect({ host, port: Number(port), noDelay: true });
const later = (write) => (chunk) => setTimeout(() => write(chunk), delay);
process.stdin.on('data', later((chunk) => socket.write(chunk)));
socket.on('data', later((chunk) => process.stdout.write(chunk)));
// Whatever is still held goes out before the other side is closed.
process.stdin.on('end', () => setTimeout(() => socket.end(), delay));
socket.on('end', () => setTimeout(() => process.exit(0), delay));
socket.on('error', (error) => {
  console.error(`delay-proxy: ${host}:${port}: ${error.message}`);
  process.exit(1);
});
