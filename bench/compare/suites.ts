/**
 * What each suite measures and how much. `quick` varies one factor at a time from a base row
 * (1 KB, acks=1, no compression, 1 partition) and fits in ten minutes with Kafka; `full` runs the
 * whole grid (record size × acks × compression × partitions, 16 rows) with the same run sizes and
 * longer latency runs (about twice the quick suite's time) and the transaction rows; `smoke`
 * is a few thousand records against Runnel only, for `npm test`.
 */
export type SuiteName = 'smoke' | 'quick' | 'full';

export interface ProduceCase {
  id: string;
  recordSize: number;
  acks: '1' | 'all';
  compression: 'none' | 'lz4';
  partitions: number;
}

export interface Suite {
  name: SuiteName;
  produce: ProduceCase[];
  /** Records per produce run, by record size. */
  records: (recordSize: number) => number;
  /** Measured runs per row (the median is reported); one warm-up run precedes them. */
  runs: number;
  warmup: boolean;
  /** 1 KB records each broker takes (and serves) once before the first row. */
  brokerWarmupRecords: number;
  consumeRecords: number;
  /** Seconds of load per fixed-rate latency run. */
  fixedRateSeconds: number;
  endToEndRecords: number;
  coldStarts: number;
  /** Bytes for the physical-limit rows. */
  physicalBytes: number;
  /**
   * The transaction rows (a load tool that has them: Kafka's): transactional produce of 1 KB
   * records, about `transactionRecords` per transaction, and a read_committed consume of them.
   */
  transactions: boolean;
}

/** Records per transaction the transactional produce row aims at (issue 14: 1,000 of 1 KB). */
export const TRANSACTION_RECORDS = 1000;

export const BASE: ProduceCase = { id: '1kb-acks1-none-p1', recordSize: 1024, acks: '1', compression: 'none', partitions: 1 };

export function caseId(c: Omit<ProduceCase, 'id'>): string {
  return `${c.recordSize >= 1024 ? `${c.recordSize / 1024}kb` : `${c.recordSize}b`}-acks${c.acks}-${c.compression}-p${c.partitions}`;
}

export function caseName(c: ProduceCase): string {
  const size = c.recordSize >= 1024 ? `${c.recordSize / 1024} KB` : `${c.recordSize} B`;
  return `produce ${size}, acks=${c.acks}, ${c.compression === 'none' ? 'no compression' : c.compression}, ${c.partitions} partition${c.partitions > 1 ? 's' : ''}`;
}

function oneAtATime(): ProduceCase[] {
  const variants: Array<Partial<ProduceCase>> = [{}, { recordSize: 100 }, { acks: 'all' }, { compression: 'lz4' }, { partitions: 12 }];
  return variants.map((v) => { const c = { ...BASE, ...v }; return { ...c, id: caseId(c) }; });
}

function grid(): ProduceCase[] {
  const out: ProduceCase[] = [];
  for (const recordSize of [1024, 100]) {
    for (const acks of ['1', 'all'] as const) {
      for (const compression of ['none', 'lz4'] as const) {
        for (const partitions of [1, 12]) {
          const c = { recordSize, acks, compression, partitions };
          out.push({ ...c, id: caseId(c) });
        }
      }
    }
  }
  return out;
}

export function suite(name: SuiteName): Suite {
  switch (name) {
    case 'smoke':
      return {
        name, produce: [BASE, { ...BASE, recordSize: 100, id: caseId({ ...BASE, recordSize: 100 }) }],
        records: () => 3000, runs: 1, warmup: false, brokerWarmupRecords: 0, consumeRecords: 3000, fixedRateSeconds: 1,
        endToEndRecords: 50, coldStarts: 1, physicalBytes: 8 * 1024 * 1024, transactions: false,
      };
    case 'quick':
      return {
        name, produce: oneAtATime(), records: (size) => (size >= 1024 ? 100_000 : 400_000), runs: 3, warmup: true, brokerWarmupRecords: 200_000,
        consumeRecords: 100_000, fixedRateSeconds: 5, endToEndRecords: 2_000, coldStarts: 3, physicalBytes: 256 * 1024 * 1024,
        transactions: false,
      };
    case 'full':
      return {
        name, produce: grid(), records: (size) => (size >= 1024 ? 100_000 : 400_000), runs: 3, warmup: true, brokerWarmupRecords: 200_000,
        consumeRecords: 100_000, fixedRateSeconds: 10, endToEndRecords: 5_000, coldStarts: 5, physicalBytes: 1024 * 1024 * 1024,
        transactions: true,
      };
  }
}
