// Parent side of a worker child process: fork, message queue, typed waits.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { readRss } from './rss.mjs';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker-child.mjs');

export class WorkerChild {
  constructor() {
    this.proc = fork(CHILD, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'advanced' });
    this.proc.stdout.pipe(process.stderr);
    this.proc.stderr.pipe(process.stderr);
    this.inbox = [];
    this.waiters = [];
    this.exited = false;
    this.proc.on('message', (msg) => this.#deliver(msg));
    this.proc.on('exit', (code, signal) => {
      this.exited = true;
      this.#deliver({ ev: 'exit', code, signal });
    });
  }

  get pid() {
    return this.proc.pid;
  }

  #deliver(msg) {
    const i = this.waiters.findIndex((w) => w.evs.includes(msg.ev) || msg.ev === 'error' || msg.ev === 'exit');
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.settle(msg);
    } else {
      this.inbox.push(msg);
    }
  }

  /** Next message of one of the given kinds; an error or exit message rejects. */
  next(evs, timeoutMs = 60_000) {
    evs = [].concat(evs);
    const i = this.inbox.findIndex((m) => evs.includes(m.ev) || m.ev === 'error' || m.ev === 'exit');
    const check = (msg) => {
      if (evs.includes(msg.ev)) return msg;
      if (msg.ev === 'error') throw new Error(`worker process: ${msg.message}`);
      throw new Error(`worker process exited (code ${msg.code}, signal ${msg.signal}) while waiting for ${evs}`);
    };
    if (i >= 0) {
      const [msg] = this.inbox.splice(i, 1);
      return Promise.resolve().then(() => check(msg));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for worker message ${evs}`));
      }, timeoutMs);
      const waiter = {
        evs,
        settle: (msg) => {
          clearTimeout(timer);
          try {
            resolve(check(msg));
          } catch (err) {
            reject(err);
          }
        },
      };
      this.waiters.push(waiter);
    });
  }

  send(msg) {
    this.proc.send(msg);
  }

  async init(targetUrl, config, { concurrency, timeoutMs = 120_000 } = {}) {
    this.send({ cmd: 'init', targetUrl, config, concurrency });
    await this.next('ready', timeoutMs);
  }

  async go(expect, timeoutMs = 120_000) {
    this.send({ cmd: 'go', expect });
    return this.next('started', timeoutMs);
  }

  /** Start a new timed phase: zero the counters and wait for `expect` handler starts. */
  async expect(expect, timeoutMs = 30_000) {
    this.send({ cmd: 'expect', expect });
    await this.next('expecting', timeoutMs);
  }

  async counters() {
    this.send({ cmd: 'counters' });
    const c = await this.next('counters', 30_000);
    const proc = readRss(this.pid);
    return { ...c, peakRssMb: proc?.peakRssMb ?? c.peakRssMb };
  }

  async stop(timeoutMs = 60_000) {
    if (this.exited) return;
    this.send({ cmd: 'stop' });
    try {
      await this.next('stopped', timeoutMs);
    } finally {
      await this.kill();
    }
  }

  async kill() {
    if (this.exited) return;
    const gone = new Promise((r) => this.proc.once('exit', r));
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 2_000);
    this.proc.kill('SIGTERM');
    await gone;
    clearTimeout(t);
  }
}
