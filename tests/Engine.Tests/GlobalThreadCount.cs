namespace Engine.Tests;

/// <summary>
/// Tests that set <see cref="Engine.Kernels.WorkPartition.Threads"/> (a process-wide setting), and tests whose results depend on
/// it staying put (training's summed weight gradients depend on the partition count), run in this collection: alone,
/// never beside another test that could change the thread count under them.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalThreadCount
{
    public const string Name = "WorkPartition.Threads";
}
