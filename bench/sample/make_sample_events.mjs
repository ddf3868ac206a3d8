// Fallback input for bench/pipeline.py when the local stack is not available: runs the REAL
// state machine definition with the runner's own test fake of cargo lambda watch
// (local/runner/lib/fake-lambda.mjs: scripted answers, no Rust, no moto) and writes the runner's
// --events file. The split it yields measures the runner, not our handlers.
//   node bench/sample/make_sample_events.mjs bench/sample/fake-events.jsonl
import { startFakeLambda, happyScript } from '../../local/runner/lib/fake-lambda.mjs';
import { runStateMachine } from '../../local/runner/run.mjs';

const out = process.argv[2] ?? 'bench/sample/fake-events.jsonl';
const fake = await startFakeLambda(() => happyScript());
try {
  const result = await runStateMachine({
    definitionPath: new URL('../../statemachine/golden-ami-pipeline.asl.json', import.meta.url).pathname,
    lambdaEndpoint: fake.url,
    executionName: 'bench-sample',
    eventsFile: out,
    log: null,
  });
  console.log(`${result.status} in ${result.wallMs} ms, ${result.path.length} states -> ${out}`);
} finally {
  await fake.close();
}
