using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Text.Json.Nodes;
using Engine.Data;
using Engine.Inference;
using Engine.Kernels;

namespace Engine.Cli;

/// <summary>
/// Quick timing of calls without BenchmarkDotNet, shared by <c>engine bench</c> and <c>engine demo</c>: a warm-up that is
/// not counted, then calls back to back for a fixed time, each call's time recorded into an array allocated before the
/// run (so the loop itself allocates nothing), and the median, 90th percentile and mean of them.
/// </summary>
internal static class CallTiming
{
    /// <summary>Calls run in the warm-up at least, however short --warmup is.</summary>
    public const int MinWarmupCalls = 3;

    /// <summary>The most calls one run records (128 MiB of timings); a run that fills the record stops early.</summary>
    public const int MaxRecordedCalls = 1 << 24;

    /// <summary>Seconds of timed calls, and of untimed ones before them.</summary>
    public readonly record struct Durations(double Seconds, double Warmup);

    /// <summary>
    /// The inputs of one call: the first <paramref name="batch"/> test digits, normalised as the model's file says,
    /// repeated from the first digit when the batch is larger than the test split.
    /// </summary>
    public static float[] TestInputs(Predictor model, string modelPath, MnistDataset testSet, int batch, string dataDirectory)
    {
        if (testSet.Count == 0)
        {
            throw new InvalidDataException($"{dataDirectory} holds no test digits.");
        }
        int available = Math.Min(batch, testSet.Count);
        IBatchSource test = BatchIterator.Sequential(testSet, available, model.Preprocessing.Mean, model.Preprocessing.Std);
        if (!test.SampleShape.AsSpan().SequenceEqual(model.InputShape))
        {
            throw new InvalidDataException(
                $"{Path.GetFileName(modelPath)} takes inputs [{string.Join(", ", model.InputShape.ToArray())}], but the digits in {dataDirectory} make [{string.Join(", ", test.SampleShape)}].");
        }
        float[] inputs = new float[batch * model.InputLength];
        test.FillBatch(0, 0, available, inputs, new int[available]);
        for (int filled = available; filled < batch; filled += available)
        {
            int count = Math.Min(available, batch - filled);
            inputs.AsSpan(0, count * model.InputLength).CopyTo(inputs.AsSpan(filled * model.InputLength));
        }
        return inputs;
    }

    /// <summary>
    /// Times <paramref name="model"/>'s Predict on batches of <paramref name="batch"/> of the first test digits
    /// (<see cref="TestInputs"/>), inputs and outputs allocated before the run.
    /// </summary>
    public static Timing MeasurePredict(Predictor model, string modelName, MnistDataset testSet, int batch, string dataDirectory,
        Durations durations, int minimumCalls)
    {
        float[] inputs = TestInputs(model, modelName, testSet, batch, dataDirectory);
        float[] outputs = new float[batch * model.OutputLength];
        return Measure(() => model.Predict(inputs, batch, outputs), durations, minimumCalls);
    }

    /// <summary>
    /// Runs <paramref name="call"/> for the warm-up (at least <see cref="MinWarmupCalls"/> calls), then for the timed
    /// seconds (and at least <paramref name="minimumCalls"/> calls), recording each call's Stopwatch ticks.
    /// <paramref name="before"/> runs before every call, outside its time.
    /// </summary>
    public static Timing Measure(Action call, Durations durations, int minimumCalls, Action? before = null)
    {
        // Warm-up: the JIT's tiers (methods start unoptimised and are recompiled after 30 calls and a 100 ms delay), the
        // first call's scratch for this batch size, the worker threads, the caches.
        long warmupEnd = (long)(durations.Warmup * Stopwatch.Frequency);
        long fastest = long.MaxValue;
        int warmupCalls = 0;
        for (long started = Stopwatch.GetTimestamp(); warmupCalls < MinWarmupCalls || Stopwatch.GetTimestamp() - started < warmupEnd; warmupCalls++)
        {
            before?.Invoke();
            long t0 = Stopwatch.GetTimestamp();
            call();
            fastest = Math.Min(fastest, Stopwatch.GetTimestamp() - t0);
        }

        // Room for every call the run can make at four times the fastest warm-up pace, so the loop never grows it: after a
        // short warm-up the JIT's last tier (or a worker thread that has spun up) can still make calls faster than any
        // warm-up call was, and a full array would end the run before its time.
        long budget = (long)(durations.Seconds * Stopwatch.Frequency);
        long capacity = budget / Math.Max(1, fastest) * 4 + 16;
        long[] ticks = new long[Math.Clamp(capacity, minimumCalls, MaxRecordedCalls)];
        int calls = 0;
        long inCalls = 0;
        // Managed bytes allocated by this thread, the one that makes the calls, during the run: 0 when the calls and the
        // loop allocate nothing. Not the process-wide counter: the runtime's own threads (tiered compilation finishing
        // during a short warm-up, timers) allocate into that at moments of their choosing. The Predictor's worker
        // threads are checked by the test suite (AllocationTests, all threads counted).
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        long runStart = Stopwatch.GetTimestamp(), now = runStart;
        while (calls < ticks.Length && (now - runStart < budget || calls < minimumCalls))
        {
            if (before is null)
            {
                long t0 = Stopwatch.GetTimestamp();
                call();
                now = Stopwatch.GetTimestamp();
                ticks[calls++] = now - t0;
            }
            else
            {
                before();
                long t0 = Stopwatch.GetTimestamp();
                call();
                long t1 = Stopwatch.GetTimestamp();
                ticks[calls++] = t1 - t0;
                now = t1;
            }
        }
        long wall = now - runStart;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Span<long> recorded = ticks.AsSpan(0, calls);
        foreach (long t in recorded)
        {
            inCalls += t;
        }
        recorded.Sort();
        return new Timing(calls, warmupCalls, (double)wall / Stopwatch.Frequency, before is null ? (double)wall / Stopwatch.Frequency : (double)inCalls / Stopwatch.Frequency,
            TicksToMs(Percentile(recorded, 0.5)), TicksToMs(Percentile(recorded, 0.9)), TicksToMs(inCalls) / calls, allocated);
    }

    // The nearest-rank percentile (the smallest value with at least p of the values at or below it): the median is
    // one of the measured calls, and p90 >= median always.
    public static long Percentile(ReadOnlySpan<long> sorted, double p) => sorted[Math.Max(0, (int)Math.Ceiling(p * sorted.Length) - 1)];

    public static double TicksToMs(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>
    /// One timed run. <see cref="Seconds"/> is its wall time; <see cref="BusySeconds"/> the time the samples-per-second
    /// figure divides by: the wall time for back-to-back inference calls, the steps' own time for training (whose
    /// batch filling between steps is not timed). <see cref="AllocatedBytes"/>: managed bytes the calling thread
    /// allocated during the timed run.
    /// </summary>
    public readonly record struct Timing(int Calls, int WarmupCalls, double Seconds, double BusySeconds, double MedianMs, double P90Ms, double MeanMs, long AllocatedBytes)
    {
        public double SamplesPerSecond(int batch) => Calls * (double)batch / BusySeconds;
    }

    /// <summary>What the figures depend on: the processor's instruction sets as .NET sees them, the kernels chosen, the runtime.</summary>
    public sealed record Machine(int ProcessorCount, bool Vector512Accelerated, bool Avx512F, bool AvxVnni, bool Avx2, bool Fma,
        string FloatGemm, string Int8Gemm, string Os, string DotNet, string DateUtc)
    {
        public static Machine Current() => new(
            Environment.ProcessorCount, Vector512.IsHardwareAccelerated, System.Runtime.Intrinsics.X86.Avx512F.IsSupported,
            System.Runtime.Intrinsics.X86.AvxVnni.IsSupported, System.Runtime.Intrinsics.X86.Avx2.IsSupported, System.Runtime.Intrinsics.X86.Fma.IsSupported,
            GemmF32.Best.ToString(), GemmS8U8.Best.ToString(), RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription,
            DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));

        public string Describe() =>
            $"Machine: {ProcessorCount} logical processors; Vector512 accelerated {YesNo(Vector512Accelerated)}, AVX-512F {YesNo(Avx512F)}, " +
            $"AVX-VNNI {YesNo(AvxVnni)}, AVX2 {YesNo(Avx2)}, FMA {YesNo(Fma)}; kernels: float GEMM {FloatGemm}, int8 GEMM {Int8Gemm}; " +
            $"{Os}; {DotNet}; {DateUtc}.";

        public JsonObject ToJson() => new()
        {
            ["processor_count"] = ProcessorCount,
            ["vector512_hardware_accelerated"] = Vector512Accelerated,
            ["avx512f"] = Avx512F,
            ["avx_vnni"] = AvxVnni,
            ["avx2"] = Avx2,
            ["fma"] = Fma,
            ["float_gemm"] = FloatGemm,
            ["int8_gemm"] = Int8Gemm,
            ["os"] = Os,
            ["dotnet"] = DotNet,
            ["date"] = DateUtc,
        };

        private static string YesNo(bool value) => value ? "yes" : "no";
    }
}
