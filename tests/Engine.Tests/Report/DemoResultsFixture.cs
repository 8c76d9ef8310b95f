using Engine.Cli.Demo;

namespace Engine.Tests.Report;

/// <summary>
/// A <see cref="DemoResults"/> built by hand with figures shaped like a real run of the seed network (10 epochs; conv1,
/// conv2 and fc1 with 32, 64 and 128 neurons and log-normal gradient statistics; 4 criteria x 5 amounts; one
/// 4,096-weight fc1 unit with scale max|w| / 127; the four stages), for the report's tests. Seeded: always the same.
/// </summary>
internal static class DemoResultsFixture
{
    public static readonly string[] Criteria = ["gradient-stability", "l1", "taylor", "random"];

    public static DemoResults Realistic(int seed = 7)
    {
        var random = new Random(seed);
        double Normal() => Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());

        var training = Enumerable.Range(1, 10).Select(e => new DemoEpoch(
            e,
            TrainLoss: 0.03 + 0.55 * Math.Exp(-0.45 * (e - 1)) + 0.005 * Normal(),
            TrainAccuracy: 0.999 - 0.09 * Math.Exp(-0.5 * (e - 1)),
            TestAccuracy: 0.985 - 0.07 * Math.Exp(-0.6 * (e - 1)) + 0.002 * Normal(),
            Seconds: 2.4 + 0.2 * random.NextDouble())).ToArray();

        // Gradient sizes differ by layer (conv1 sees the largest), spread over about two decades within a layer; the
        // spread sits above the mean, as after training; conv2 has two dead neurons (gradients exactly zero).
        (string Name, int Neurons, double Centre)[] layers = [("conv1", 32, 3e-3), ("conv2", 64, 8e-4), ("fc1", 128, 1.5e-4)];
        var neurons = new List<DemoLayerNeurons>();
        foreach ((string name, int count, double centre) in layers)
        {
            double[] mean = new double[count], std = new double[count];
            for (int i = 0; i < count; i++)
            {
                mean[i] = centre * Math.Exp(0.9 * Normal());
                std[i] = mean[i] * Math.Exp(1.2 + 0.4 * Normal());
            }
            if (name == "conv2")
            {
                mean[5] = std[5] = 0;
                mean[40] = std[40] = 0;
            }
            double[] raw = mean.Zip(std, (m, s) => Math.Sqrt(m * m + s * s)).ToArray();
            double average = raw.Average();
            double[] score = raw.Select(r => r / average).ToArray();
            double cut = score.Order().ElementAt(count / 4);
            neurons.Add(new DemoLayerNeurons(name, mean, std, score, score.Select(s => s < cut).ToArray()));
        }

        var kept = new List<DemoNeuronsKept>();
        foreach (string criterion in new[] { "gradient-stability", "l1" })
        {
            foreach ((string name, int count, _) in layers)
            {
                kept.Add(new DemoNeuronsKept(criterion, name, count, count - count / 4));
            }
        }

        var sweep = new List<DemoSweepPoint>();
        double[] amounts = [0.1, 0.2, 0.3, 0.5, 0.7];
        for (int c = 0; c < Criteria.Length; c++)
        {
            double fragility = new[] { 0.55, 0.35, 0.3, 1.1 }[c];
            foreach (double amount in amounts)
            {
                double after = Math.Max(0.1, 0.985 - fragility * amount * amount * 1.4);
                double tuned = amount is 0.3 or 0.7 ? Math.Min(0.985, after + 0.6 * (0.985 - after)) : double.NaN;
                sweep.Add(new DemoSweepPoint(Criteria[c], amount, after, tuned));
            }
        }

        float[] weights = new float[4096];
        for (int i = 0; i < weights.Length; i++)
        {
            weights[i] = (float)(0.018 * Normal() + (i % 512 == 0 ? 0.04 * Normal() : 0));
        }
        float scale = weights.Max(MathF.Abs) / 127f;

        DemoStage[] stages =
        [
            new("float", 0.9862, 544_522, 2_178_350, 19_694_848, 0.912, 3_410, "float.safetensors"),
            new("pruned float", 0.9831, 309_394, 1_237_870, 11_180_032, 0.561, 5_630, "pruned.safetensors"),
            new("int8", 0.9859, 544_522, 560_220, 19_694_848, 0.301, 10_920, "int8.safetensors"),
            new("pruned int8", 0.9827, 309_394, 324_110, 11_180_032, 0.198, 16_480, "pruned-int8.safetensors"),
        ];

        return new DemoResults
        {
            Started = "2026-12-01T11:00:00Z",
            Machine = "Intel Xeon (AVX-512F/BW/VL/VNNI, AVX-VNNI), 2 cores, .NET 10.0.0, Linux",
            Threads = 2,
            Seconds = 212.5,
            Training = training,
            Neurons = neurons,
            NeuronsKept = kept,
            PruningSweep = sweep,
            WeightHistogram = new DemoWeightHistogram("fc1", 17, weights, scale, 0, -127, 127),
            Stages = stages,
        };
    }
}
