using System.Runtime.ExceptionServices;

namespace Engine.Kernels;

/// <summary>
/// Teams of persistent background threads that run the partitions of a <see cref="WorkPartition.Run{TWork}"/>, with
/// nothing allocated per run: each team keeps one reusable runner object per struct work type (made the first time the
/// team sees it), workers wait on semaphores, and completion is a countdown. The caller's thread runs partition 0.
/// <para>
/// A run takes an idle team, or starts a new one while there are fewer teams than processors, so concurrent callers
/// (two predictors, or sixteen threads sharing one) each get helpers instead of queueing behind one pool. Past that
/// many teams, or when a run is nested inside a partition, the caller runs its partitions one after another: the same
/// partitions, so the same results, and the machine is already busy.
/// </para>
/// </summary>
internal sealed class WorkerPool
{
    private static readonly Stack<WorkerPool> s_idle = new();
    private static int s_teams;

    [ThreadStatic] private static bool t_insidePartition;

    private readonly List<Worker> _workers = [];
    private readonly CountdownEvent _done = new(0);
    private readonly Dictionary<Type, PartitionRunner> _runners = [];
    private PartitionRunner? _runner;
    private Exception? _failure;

    private WorkerPool()
    {
        // The first time a CountdownEvent really blocks, it creates its lock object and the monitor behind it: 88 bytes
        // on the waiting thread. The caller blocks on _done only when a worker is late (a busy machine), so that could
        // happen in the middle of a timed run, long after warm-up. One short wait that times out creates them now.
        _done.Reset(1);
        _done.Wait(1);
        _done.Reset(0);
    }

    public static bool TryRun<TWork>(in TWork work, int count, int granularity, int parts)
        where TWork : struct, IPartitionedWork
    {
        if (t_insidePartition)
        {
            return false;
        }
        WorkerPool? team;
        lock (s_idle)
        {
            if (!s_idle.TryPop(out team))
            {
                if (s_teams >= Environment.ProcessorCount)
                {
                    return false;
                }
                s_teams++;
                team = new WorkerPool();
            }
        }
        try
        {
            team.RunCore(work, count, granularity, parts);
            return true;
        }
        finally
        {
            lock (s_idle)
            {
                s_idle.Push(team);
            }
        }
    }

    private void RunCore<TWork>(in TWork work, int count, int granularity, int parts)
        where TWork : struct, IPartitionedWork
    {
        while (_workers.Count < parts - 1)
        {
            _workers.Add(new Worker(this, _workers.Count + 1));
        }
        if (!_runners.TryGetValue(typeof(TWork), out PartitionRunner? untyped))
        {
            untyped = new PartitionRunner<TWork>();
            _runners.Add(typeof(TWork), untyped);
        }
        var runner = (PartitionRunner<TWork>)untyped;
        runner.Set(work, count, granularity, parts);
        _runner = runner;
        _failure = null;
        _done.Reset(parts - 1);
        for (int p = 1; p < parts; p++)
        {
            _workers[p - 1].Start();
        }
        t_insidePartition = true;
        try
        {
            runner.Invoke(0);
        }
        finally
        {
            t_insidePartition = false;
            _done.Wait();   // the workers must be done with this run before the team is reused or the caller returns
            _runner = null;
            runner.Clear();
        }
        if (_failure is { } failure)
        {
            ExceptionDispatchInfo.Capture(failure).Throw();
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
            t_insidePartition = true;   // a run nested in a partition goes inline rather than waiting for a team
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
        // One per team and work type; only the thread that holds the team touches it between runs.
        private TWork _work;
        private int _count, _granularity, _parts;

        public void Set(in TWork work, int count, int granularity, int parts) =>
            (_work, _count, _granularity, _parts) = (work, count, granularity, parts);

        public void Clear() => _work = default;   // do not keep the run's buffers alive

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
