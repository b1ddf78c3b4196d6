namespace Palisade.Exporters.Filters;

/// <summary>
/// Tetragon's --export-rate-limit: at most N events per minute leave one sink, as a token
/// bucket refilled continuously; what is refused is counted and reported in a
/// rate_limit_info event once the limit lets up (at most once per <see cref="ReportEvery"/>).
/// </summary>
public sealed class RateLimiter(int perMinute, TimeProvider? time = null)
{
    public static readonly TimeSpan ReportEvery = TimeSpan.FromSeconds(5);

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private double _tokens = perMinute;
    private long _last = (time ?? TimeProvider.System).GetTimestamp();
    private long _unreported;
    private long _lastReport;

    public int PerMinute { get; } = perMinute;

    /// <summary>Events refused so far.</summary>
    public long Dropped { get; private set; }

    public bool TryTake()
    {
        var now = _time.GetTimestamp();
        _tokens = Math.Min(PerMinute, _tokens + _time.GetElapsedTime(_last, now).TotalMinutes * PerMinute);
        _last = now;
        if (_tokens >= 1)
        {
            _tokens -= 1;
            return true;
        }
        Dropped++;
        _unreported++;
        return false;
    }

    /// <summary>Drops not yet reported, when a report is due (and resets them); 0 otherwise.</summary>
    public long TakeReport(bool force = false)
    {
        if (_unreported == 0)
        {
            return 0;
        }
        var now = _time.GetTimestamp();
        if (!force && _lastReport != 0 && _time.GetElapsedTime(_lastReport, now) < ReportEvery)
        {
            return 0;
        }
        _lastReport = now;
        var n = _unreported;
        _unreported = 0;
        return n;
    }
}
