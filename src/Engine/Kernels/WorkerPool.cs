using System.Runtime.ExceptionServices;

namespace Engine.Kernels;

/// <summary>
/// Persistent background threads that run the partitions of one <see cref="WorkPartition.Run{TWork}"/> at a time, with
/// nothing allocated per run: each struct work type gets one reusable runner object (made the first time it is seen),
/// workers wait on semaphores, and completion is a countdown. The caller's thread runs partition 0 itself.
/// A run that finds the pool busy (a concurrent caller, or a run nested inside a partition) executes its partitions one
/// after another on its own thread instead: the same partitions, so the same results, and never more threads than cores.
/// </summary>
internal sealed class WorkerPool
{
    private static readonly WorkerPool s_shared = new();

    private readonly List<Worker> _workers = [];
    private readonly CountdownEvent _done = new(0);
    private int _busy;
    private PartitionRunner? _runner;
    private Exception? _failure;

    public static bool TryRun<TWork>(in TWork work, int count, int granularity, int parts)
        where TWork : struct, IPartitionedWork => s_shared.TryRunCore(work, count, granularity, parts);

    private bool TryRunCore<TWork>(in TWork work, int count, int granularity, int parts)
        where TWork : struct, IPartitionedWork
    {
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            return false;
        }
        try
        {
            while (_workers.Count < parts - 1)
            {
                _workers.Add(new Worker(this, _workers.Count + 1));
            }
            PartitionRunner<TWork> runner = PartitionRunner<TWork>.Shared;
            runner.Set(work, count, granularity, parts);
            _runner = runner;
            _failure = null;
            _done.Reset(parts - 1);
            for (int p = 1; p < parts; p++)
            {
                _workers[p - 1].Start();
            }
            try
            {
                runner.Invoke(0);
            }
            finally
            {
                _done.Wait();   // the workers must be done with this run before the pool is reused or the caller returns
                _runner = null;
                runner.Clear();
            }
            if (_failure is { } failure)
            {
                ExceptionDispatchInfo.Capture(failure).Throw();
            }
            return true;
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private sealed class Worker
    {
        private readonly WorkerPool _pool;
        private readonly int _partition;
        private readonly SemaphoreSlim _start = new(0);

        public Worker(WorkerPool pool, int partition)
        {
            _pool = pool;
            _partition = partition;
            new Thread(Loop) { IsBackground = true, Name = $"Engine worker {partition}" }.Start();
        }

        public void Start() => _start.Release();

        private void Loop()
        {
            while (true)
            {
                // SemaphoreSlim spins briefly before it sleeps. Longer spinning was measured slower here: a spinning
                // worker takes cycles from the thread doing the serial work between runs (18 against 16 ms, batch 64).
                _start.Wait();
                try
                {
                    _pool._runner!.Invoke(_partition);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref _pool._failure, e, null);
                }
                finally
                {
                    _pool._done.Signal();
                }
            }
        }
    }

    private abstract class PartitionRunner
    {
        public abstract void Invoke(int partition);
    }

    private sealed class PartitionRunner<TWork> : PartitionRunner
        where TWork : struct, IPartitionedWork
    {
        // One per work type; only the thread holding the pool's busy flag touches it.
        public static readonly PartitionRunner<TWork> Shared = new();

        private TWork _work;
        private int _count, _granularity, _parts;

        public void Set(in TWork work, int count, int granularity, int parts) =>
            (_work, _count, _granularity, _parts) = (work, count, granularity, parts);

        public void Clear() => _work = default;   // do not keep the run's tensors alive

        public override void Invoke(int partition)
        {
            (int start, int end) = WorkPartition.Bounds(partition, _parts, _count, _granularity);
            if (start < end)
            {
                _work.Invoke(partition, start, end);
            }
        }
    }
}
