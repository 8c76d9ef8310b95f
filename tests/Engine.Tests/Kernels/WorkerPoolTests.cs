using Engine.Kernels;

namespace Engine.Tests.Kernels;

/// <summary>The persistent worker teams behind <see cref="WorkPartition.Run{TWork}"/>.</summary>
public sealed class WorkerPoolTests
{
    private readonly struct SecondPartitionSleeps(int milliseconds) : IPartitionedWork
    {
        public void Invoke(int partition, int start, int end)
        {
            if (partition == 1 && milliseconds > 0)
            {
                Thread.Sleep(milliseconds);   // a late worker, as on a busy machine: the caller must block until it is done
            }
        }
    }

    [Fact]
    public void A_caller_that_blocks_for_a_late_worker_allocates_nothing()
    {
        // The caller waits on a countdown whose first real block used to allocate its lock (88 bytes) on the waiting
        // thread: a run on a busy machine then allocated in the middle of a timed loop, long after warm-up.
        // Warm-up without a late worker: the team's runner for this work type and the JIT allocate on a first run.
        WorkPartition.Run(2, 2, 1, new SecondPartitionSleeps(0));
        for (int i = 0; i < 3; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            WorkPartition.Run(2, 2, 1, new SecondPartitionSleeps(20));
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }
}
