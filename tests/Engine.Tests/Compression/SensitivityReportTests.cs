using Engine.Compression;

namespace Engine.Tests.Compression;

public class SensitivityReportTests
{
    private static readonly SensitivityReport Report = new(0.98f,
    [
        new LayerSensitivity("conv2", 64, 18_496,
            [new PruningSensitivity(0.25, 48, 0.975f), new PruningSensitivity(0.5, 32, 0.96f)],
            [new QuantizationSensitivity(8, 0.98f), new QuantizationSensitivity(4, 0.97f)]),
        new LayerSensitivity("fc2", 10, 1_290, [], [new QuantizationSensitivity(4, 0.95f)]),
    ]);

    [Theory]
    [InlineData(0.0, 0.0)]
    [InlineData(0.125, 0.25)]    // halfway from (0, 0) to (25%, 0.5 points)
    [InlineData(0.25, 0.5)]
    [InlineData(0.375, 1.25)]    // halfway from 0.5 to 2 points
    [InlineData(0.5, 2.0)]
    [InlineData(0.75, 2.0)]      // beyond the last measured amount: the last measured drop
    public void Pruning_drops_are_interpolated_between_measured_amounts(double amount, double points)
    {
        Assert.Equal(points, Report.PruningDrop("conv2", amount)!.Value, 4);
    }

    [Fact]
    public void Unmeasured_settings_have_no_drop()
    {
        Assert.Null(Report.PruningDrop("fc2", 0.5));
        Assert.Null(Report.PruningDrop("fc9", 0.5));
        Assert.Equal(0, Report.PruningDrop("fc2", 0)!.Value);
        Assert.Equal(1.0, Report.QuantizationDrop("conv2", 4)!.Value, 4);
        Assert.Equal(3.0, Report.QuantizationDrop("fc2", 4)!.Value, 4);
        Assert.Null(Report.QuantizationDrop("fc2", 6));
    }
}
