using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using Palisade.Bpf;
using Palisade.Datapath.Services;
using Palisade.Policies.Services;

namespace Palisade.Bench;

/// <summary>
/// The palisade side of bench/service-scale.sh: socket-LB (<see cref="ServiceDatapath"/>)
/// attached to a cgroup of its own, N ClusterIP services programmed, the time that takes and
/// the time to change one service when N exist, then held while the script runs a client in
/// that cgroup. Started as `Palisade.Bench service-scale --services N --cgroup PATH ...`.
///
/// Prints one JSON line `{"event":"ready",...}` (apply_ms: Apply of all N from an empty
/// datapath; upsert_change: Upsert of service 0 with its second backend replaced, then back,
/// REPEATS times; upsert_add: Upsert of an (N+1)th service, removed again untimed; map_bytes:
/// the kernel's memlock of the service maps), waits for stdin to close (or SIGTERM/SIGINT),
/// prints `{"event":"done",...}` with the datapath's counters, detaches, removes the cgroup.
/// Service i is bench/svc-i:http, VIP_BASE + i + 1 port PORT/TCP; the last one has the real
/// BACKENDS, every other one two endpoints from FAKE_BASE (as bench/services/kubeproxy_rules.py).
/// </summary>
internal static class ServiceScale
{
    public static int Run(string[] args)
    {
        var o = Options.Parse(args);
        var root = KernelEnvironment.Cgroup2Root()
            ?? throw new InvalidOperationException("No cgroup v2 hierarchy is mounted (looked for cgroup2 in /proc/self/mountinfo): mount -t cgroup2 none /sys/fs/cgroup/unified");
        var cgroup = o.Cgroup ?? Path.Combine(root, $"palisade-service-scale-{Environment.ProcessId}");
        if (!Path.GetFullPath(cgroup).StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal))
        {
            throw new ArgumentException($"--cgroup {cgroup} is not under the cgroup2 hierarchy {root}");
        }
        var created = !Directory.Exists(cgroup);
        Directory.CreateDirectory(cgroup);
        using var stop = new CancellationTokenSource();
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var intr = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
        try
        {
            var services = Enumerable.Range(0, o.Services).Select(i => Frontend(o, i)).ToList();
            using var datapath = new ServiceDatapath(new ServiceDatapathOptions
            {
                CgroupRoot = cgroup,
                MaxBackends = Math.Max(65536, 2 * o.Services + 16),
                MaxSlots = Math.Max(262144, 3 * o.Services + 64),
            });
            datapath.Start();

            // JIT the paths once (a frontend outside the benchmark's, added and removed), so
            // that apply_ms is the maps' work, not the first call's compilation.
            var warm = Frontend(o, o.Services + 1000) with { Backends = [new ServiceBackend(o.Alt.Address, o.Alt.Port)] };
            datapath.Upsert(warm);
            datapath.Remove(warm);

            var sw = Stopwatch.StartNew();
            datapath.Apply(services);
            var applyMs = sw.Elapsed.TotalMilliseconds;

            var churn = services[0];
            var changed = churn with { Backends = [churn.Backends[0], new ServiceBackend(o.Alt.Address, o.Alt.Port)] };
            var change = new List<double>(o.Repeats);
            for (var i = 0; i < o.Repeats; i++)
            {
                var next = i % 2 == 0 ? changed : churn;
                sw.Restart();
                datapath.Upsert(next);
                change.Add(sw.Elapsed.TotalMilliseconds);
            }
            datapath.Upsert(churn); // back to the first state (a no-op after an even count)

            var extra = Frontend(o, o.Services) with
            {
                Backends = [new ServiceBackend(o.Alt.Address, o.Alt.Port), new ServiceBackend(o.Alt.Address, (ushort)(o.Alt.Port + 1))],
            };
            var add = new List<double>(o.Repeats);
            var remove = new List<double>(o.Repeats);
            for (var i = 0; i < o.Repeats; i++)
            {
                sw.Restart();
                datapath.Upsert(extra);
                add.Add(sw.Elapsed.TotalMilliseconds);
                sw.Restart();
                datapath.Remove(extra);
                remove.Add(sw.Elapsed.TotalMilliseconds);
            }

            var stats = datapath.Stats();
            Emit(w =>
            {
                w.WriteString("event", "ready");
                w.WriteString("cgroup", cgroup);
                w.WriteNumber("services", o.Services);
                w.WriteNumber("apply_ms", Math.Round(applyMs, 3));
                Summary(w, "upsert_change", change);
                Summary(w, "upsert_add", add);
                Summary(w, "remove", remove);
                w.WriteNumber("frontends", stats.Frontends);
                w.WriteNumber("backends", stats.Backends);
                w.WriteNumber("slots", stats.Slots);
                w.WriteNumber("map_bytes", stats.MapBytes);
                w.WriteNumber("managed_bytes", GC.GetTotalMemory(forceFullCollection: true));
                w.WriteNumber("rss_bytes", Environment.WorkingSet);
            });

            // Hold until the script closes stdin (its client is done) or stops us.
            var eof = Task.Run(() =>
            {
                while (Console.In.ReadLine() is not null)
                {
                }
            });
            try
            {
                eof.Wait(stop.Token);
            }
            catch (OperationCanceledException)
            {
            }

            stats = datapath.Stats();
            var counters = datapath.Counters(services[^1]);
            Emit(w =>
            {
                w.WriteString("event", "done");
                w.WriteNumber("translated", stats.Translated);
                w.WriteNumber("no_backend", stats.NoBackend);
                w.WriteNumber("backend_miss", stats.BackendMiss);
                w.WriteNumber("revnat_full", stats.RevNatFull);
                w.WriteNumber("reversed", stats.Reversed);
                w.WriteNumber("tested_translated", counters?.Translated ?? 0);
                w.WriteNumber("tested_refused", counters?.Refused ?? 0);
            });
            return 0;
        }
        finally
        {
            if (created)
            {
                RemoveCgroup(cgroup);
            }
        }
    }

    private static ServiceFrontend Frontend(Options o, int i)
    {
        var vip = Add(o.VipBase, (uint)i + 1);
        IReadOnlyList<ServiceBackend> backends = i == o.Services - 1
            ? [.. o.Backends.Select(b => new ServiceBackend(b.Address, b.Port))]
            : [new ServiceBackend(Add(o.FakeBase, 2u * (uint)i + 1), 8080), new ServiceBackend(Add(o.FakeBase, 2u * (uint)i + 2), 8080)];
        return new ServiceFrontend(new ServicePortName("bench", $"svc-{i}", "http"), vip, o.Port, L4Protocol.Tcp, FrontendKind.ClusterIP, backends, []);
    }

    private static IPAddress Add(IPAddress a, uint n)
    {
        Span<byte> b = stackalloc byte[4];
        a.TryWriteBytes(b, out _);
        var v = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(b) + n;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(b, v);
        return new IPAddress(b);
    }

    private static void Summary(Utf8JsonWriter w, string name, List<double> samples)
    {
        w.WriteStartObject(name);
        if (samples.Count > 0)
        {
            var s = samples.Order().ToArray();
            double At(double p) => s[Math.Clamp((int)Math.Ceiling(p * s.Length) - 1, 0, s.Length - 1)];
            w.WriteNumber("median_ms", Math.Round(s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2, 4));
            w.WriteNumber("p99_ms", Math.Round(At(0.99), 4));
            w.WriteNumber("min_ms", Math.Round(s[0], 4));
            w.WriteNumber("max_ms", Math.Round(s[^1], 4));
        }
        w.WriteNumber("n", samples.Count);
        w.WriteEndObject();
    }

    private static void Emit(Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        Console.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
        Console.Out.Flush();
    }

    private static void RemoveCgroup(string cgroup)
    {
        // The script's client has exited, but the kernel may still be moving it out.
        for (var i = 0; i < 50; i++)
        {
            try
            {
                Directory.Delete(cgroup);
                return;
            }
            catch (IOException) when (i < 49)
            {
                Thread.Sleep(100);
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"service-scale: could not remove {cgroup}: {e.Message}");
            }
        }
    }

    private sealed record Endpoint(IPAddress Address, ushort Port)
    {
        public static Endpoint Parse(string text)
        {
            var colon = text.LastIndexOf(':');
            if (colon <= 0 || !IPAddress.TryParse(text.AsSpan(0, colon), out var address) || address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork
                || !ushort.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port))
            {
                throw new ArgumentException($"'{text}' is not IPv4:PORT");
            }
            return new Endpoint(address, port);
        }
    }

    private sealed record Options(int Services, string? Cgroup, IPAddress VipBase, ushort Port, IReadOnlyList<Endpoint> Backends, IPAddress FakeBase, Endpoint Alt, int Repeats)
    {
        public static Options Parse(string[] args)
        {
            var o = new Options(1, null, IPAddress.Parse("10.240.0.0"), 80,
                [Endpoint.Parse("10.231.2.1:7200"), Endpoint.Parse("10.231.2.2:7200")], IPAddress.Parse("10.232.0.0"), Endpoint.Parse("10.233.0.1:8080"), 200);
            for (var i = 1; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                o = args[i] switch
                {
                    "--services" => o with { Services = int.Parse(Value(), CultureInfo.InvariantCulture) },
                    "--cgroup" => o with { Cgroup = Value() },
                    "--vip-base" => o with { VipBase = IPAddress.Parse(Value()) },
                    "--port" => o with { Port = ushort.Parse(Value(), CultureInfo.InvariantCulture) },
                    "--backends" => o with { Backends = [.. Value().Split(',').Select(Endpoint.Parse)] },
                    "--fake-base" => o with { FakeBase = IPAddress.Parse(Value()) },
                    "--alt" => o with { Alt = Endpoint.Parse(Value()) },
                    "--repeats" => o with { Repeats = int.Parse(Value(), CultureInfo.InvariantCulture) },
                    _ => throw new ArgumentException($"unknown option {args[i]} (service-scale --services N [--cgroup PATH] [--vip-base A] [--port P] [--backends A:P,B:P] [--fake-base A] [--alt A:P] [--repeats R])"),
                };
            }
            if (o.Services is < 1 or > 65000)
            {
                throw new ArgumentException("--services must be 1..65000 (reverse-NAT indices are 16 bits)");
            }
            if (o.Backends.Count == 0 || o.Repeats < 1)
            {
                throw new ArgumentException("--backends needs at least one endpoint, --repeats at least 1");
            }
            return o;
        }
    }
}
