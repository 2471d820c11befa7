using Xmpp.Server.Cli;
using Xmpp.Server.Hosting;

var loaded = ConfigurationLoader.Load(args);
var words = loaded.Positional;
var verb = words.Count > 0 ? words[0] : "run";
if (verb is "help" or "-h" || args.Contains("--help"))
{
    Console.WriteLine(AdminCommands.Usage);
    return 0;
}
var options = ConfigurationLoader.Bind(loaded.Configuration);
if (verb == "check") return await AdminCommands.CheckAsync(options, loaded.Problems, loaded.ConfigFile);

var problems = loaded.Problems.Concat(OptionsValidator.Validate(options)).ToList();
if (problems.Count > 0)
{
    foreach (var p in problems) Console.Error.WriteLine("config problem: " + p);
    return 2;
}

try
{
    return await RunVerbAsync();
}
catch (Exception ex) when (Damaged(ex) is { } damaged)
{
    // One line naming the file and what to do, not a stack trace; exit 3 so a service manager does not loop on it.
    Console.Error.WriteLine("error: " + damaged.Message);
    return 3;
}
catch (Xmpp.Storage.StorageOpenException ex)
{
    // Unreachable database, newer schema: one line for the operator rather than a stack trace.
    Console.Error.WriteLine("error: storage: " + ex.Message);
    return 3;
}

async Task<int> RunVerbAsync()
{
    switch (verb)
    {
        case "run":
            Microsoft.AspNetCore.Builder.WebApplication app;
            try { app = XmppHost.Build(options, loaded.Configuration); }
            catch (DataDirLockException ex)
            {
                Console.Error.WriteLine("error: " + ex.Message);
                return 1;
            }
            await app.RunAsync();
            return 0;
        case var admin when AdminOperations.Verbs.Contains(admin):
            return await AdminCommands.AdminAsync(words, options);
        case "restore":
            return RestoreCommand.Run(words, options);
        case "migrate":
            return await MigrateCommand.RunAsync(words, options);
        case "cert":
            return AdminCommands.CertGenerate(words, options);
        default:
            Console.Error.WriteLine($"error: unknown command '{verb}'");
            Console.Error.WriteLine(AdminCommands.Usage);
            return 2;
    }
}

static Xmpp.Storage.StorageDamagedException? Damaged(Exception? ex)
{
    // Thrown while services are built, it may arrive wrapped (a module's constructor opens its archive).
    for (; ex is not null; ex = ex is AggregateException { InnerExceptions.Count: 1 } a ? a.InnerException : ex.InnerException)
        if (ex is Xmpp.Storage.StorageDamagedException damaged) return damaged;
    return null;
}
