using Engine.Inference;

namespace Engine.Tests.Inference;

/// <summary>
/// Tests that read the process-wide allocation counter run alone: any test beside them would allocate into it.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideMeasurements
{
    public const string Name = "process-wide measurements";

    /// <summary>
    /// Bytes allocated on every thread of the process (worker threads included) while <paramref name="action"/> runs:
    /// the least of three rounds, since whatever else the process does (the test host's timers) lands in the same
    /// counter, while an allocation of the code under test shows in every round. Call it from this collection only.
    /// </summary>
    public static long LeastAllocated(Action action)
    {
        long least = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            action();
            least = Math.Min(least, GC.GetTotalAllocatedBytes(precise: true) - before);
        }
        return least;
    }
}

[Collection(ProcessWideMeasurements.Name)]
public class AllocationTests(PredictorFixture fixture) : IClassFixture<PredictorFixture>
{
    [Theory]
    [InlineData(ModelFormat.Float, 1, 1)]
    [InlineData(ModelFormat.Float, 1, 2)]
    [InlineData(ModelFormat.Float, 64, 2)]
    [InlineData(ModelFormat.Int8, 1, 1)]
    [InlineData(ModelFormat.Int8, 1, 2)]
    [InlineData(ModelFormat.Int8, 64, 2)]
    public void Predict_allocates_nothing_on_any_thread_after_warm_up(ModelFormat format, int batch, int threads)
    {
        Predictor model = Predictor.Load(fixture.Bytes(format), "model", new PredictorOptions { Threads = threads });
        float[] output = new float[batch * 10];
        int[] top = new int[3];
        ReadOnlySpan<float> inputs = fixture.Samples(0, batch);
        for (int i = 0; i < 3; i++)
        {
            model.Predict(inputs, batch, output);
            model.Classify(inputs[..1024]);
            model.TopK(inputs[..1024], top);
        }
        // Counted on every thread (the workers included), not only this one. Whatever else the process does (the test
        // host's timers) also lands in this counter, so the least of three rounds is taken: an allocation of ours would
        // show in every round.
        long least = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < 20; i++)
            {
                model.Predict(inputs, batch, output);
                model.Classify(inputs[..1024]);
                model.TopK(inputs[..1024], top);
            }
            least = Math.Min(least, GC.GetTotalAllocatedBytes(precise: true) - before);
        }
        Assert.Equal(0, least);
    }
}
