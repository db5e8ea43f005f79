// CPU-bound work for the thread-cpu workload: `rounds` chained SHA-256 digests of 1 KiB. The same
// function runs in-process and in the threads, so the two are the same work.
import { createHash } from 'node:crypto'

const block = Buffer.alloc(1024, 7)

export default function hash(rounds) {
  let digest = block
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).update(block).digest()
  return digest.length
}
