// Loads Holoptic's exports with the real tools: @openzeppelin/merkle-tree loads every dump,
// rebuilds the same root from the values, gives the same proofs and verifies each; ethers'
// parseUnits reads every Safe CSV amount back to exactly the committed base units; merkletreejs
// (sorted leaves and pairs, as Uniswap's merkle-distributor) rebuilds every claims root and
// verifies every claim's proof; @morpho-labs/gnosis-tx-builder (the Safe Transaction Builder's
// checksum and transaction checks) parses every batch file.
// Usage: node check-exports.mjs DIR (files written by the Rust tests, see tests/exports.rs).
import fs from 'node:fs';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { parseUnits, solidityPackedKeccak256, getAddress } from 'ethers';
import { MerkleTree } from 'merkletreejs';
import keccak256 from 'keccak256';
import { ethers as ethers5 } from 'ethers5';
import txBuilderPkg from '@morpho-labs/gnosis-tx-builder';
const { TxBuilder } = txBuilderPkg;

const dir = process.argv[2];
const encoding = ['address', 'uint256'];
let checks = 0;
const fail = (msg) => { console.error(`interop: ${msg}`); process.exit(1); };

for (const f of fs.readdirSync(dir).sort()) {
  const data = JSON.parse(fs.readFileSync(`${dir}/${f}`, 'utf8'));
  if (f.startsWith('merkle-')) {
    const dump = data.merkle;
    const tree = StandardMerkleTree.load(dump);
    if (tree.root !== dump.tree[0]) fail(`${f}: loaded root differs`);
    const rebuilt = StandardMerkleTree.of(dump.values.map((v) => v.value), encoding);
    if (rebuilt.root !== tree.root) fail(`${f}: StandardMerkleTree.of gives another root`);
    for (const [i, v] of tree.entries()) {
      const ours = data.proofs[v[0]];
      if (JSON.stringify(tree.getProof(i)) !== JSON.stringify(ours)) fail(`${f}: proof of ${v[0]} differs`);
      if (!StandardMerkleTree.verify(tree.root, encoding, v, ours)) fail(`${f}: proof of ${v[0]} does not verify`);
      checks += 1;
    }
    console.log(`${f}: ${dump.values.length} leaves, root ${tree.root} ok`);
  } else if (f.startsWith('uniswap-')) {
    const entries = Object.entries(data.claims);
    const leaves = entries.map(([addr, c]) => {
      if (getAddress(addr) !== addr) fail(`${f}: ${addr} is not EIP-55`);
      return solidityPackedKeccak256(['uint256', 'address', 'uint256'], [c.index, addr, BigInt(c.amount)]);
    });
    const tree = new MerkleTree(leaves, keccak256, { sortLeaves: true, sortPairs: true });
    if (tree.getHexRoot() !== data.merkleRoot) fail(`${f}: merkletreejs root ${tree.getHexRoot()} differs from ${data.merkleRoot}`);
    const sorted = entries.map(([a]) => a).sort();
    entries.forEach(([addr, c], i) => {
      if (sorted[c.index] !== addr) fail(`${f}: index of ${addr} is not its sorted position`);
      if (!tree.verify(c.proof, leaves[i], data.merkleRoot)) fail(`${f}: proof of ${addr} does not verify`);
      checks += 1;
    });
    const total = entries.reduce((s, [, c]) => s + BigInt(c.amount), 0n);
    if (total !== BigInt(data.tokenTotal)) fail(`${f}: tokenTotal differs`);
    console.log(`${f}: ${entries.length} claims, root ${data.merkleRoot} ok`);
  } else if (f.startsWith('snapshot-')) {
    // As the api-post strategy does: getAddress on each address, formatUnits on each score.
    data.score.forEach((s, i) => {
      if (ethers5.utils.getAddress(s.address) !== s.address) fail(`${f}: ${s.address} is not EIP-55`);
      const human = ethers5.utils.formatUnits(s.score, data.decimals);
      if (!ethers5.utils.parseUnits(data.expected[i], data.decimals).eq(ethers5.utils.parseUnits(human, data.decimals))) {
        fail(`${f}: score ${s.score} reads as ${human}, expected ${data.expected[i]}`);
      }
      checks += 1;
    });
    console.log(`${f}: ${data.score.length} scores read by ethers v5`);
  } else if (f.startsWith('txbuilder-')) {
    let txs;
    try {
      txs = TxBuilder.parse(data.file);
    } catch (e) {
      fail(`${f}: the Transaction Builder parser refuses the batch: ${e.message} ${JSON.stringify(e.params ?? {})}`);
    }
    const tampered = JSON.parse(data.file);
    tampered.transactions[0].to = getAddress('0x' + '11'.repeat(20));
    let refused = false;
    try { TxBuilder.parse(JSON.stringify(tampered)); } catch { refused = true; }
    if (!refused) fail(`${f}: a changed batch still passed the checksum`);
    if (data.token) {
      for (const t of txs) {
        if (t.to !== data.token || t.contractMethod?.name !== 'transfer') fail(`${f}: not an ERC-20 transfer: ${JSON.stringify(t)}`);
        if (getAddress(t.contractInputsValues.to) !== t.contractInputsValues.to) fail(`${f}: receiver not EIP-55`);
      }
      const got = txs.map((t) => t.contractInputsValues.value).sort();
      const want = [...data.base_units].sort();
      if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${f}: transfers ${got}, expected ${want}`);
      const total = txs.reduce((s, t) => s + BigInt(t.contractInputsValues.value), 0n);
      if (total.toString() !== data.total) fail(`${f}: transfers sum to ${total}, expected ${data.total}`);
    } else {
      for (const t of txs) {
        if (getAddress(t.to) !== t.to || BigInt(t.value) <= 0n) fail(`${f}: bad native transfer ${JSON.stringify(t)}`);
      }
    }
    checks += txs.length + 1;
    console.log(`${f}: ${txs.length} transactions, checksum accepted, tampering caught`);
  } else if (f.startsWith('safe-')) {
    const got = data.rows.map((r) => parseUnits(r.amount, data.decimals).toString()).sort();
    const want = [...data.base_units].sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${f}: parseUnits gives ${got}, expected ${want}`);
    checks += got.length;
    console.log(`${f}: ${got.length} amounts parse to the committed base units`);
  }
}
if (checks === 0) fail('nothing was checked');
console.log(`interop: ${checks} checks passed`);
