import ArgumentParser

@main
struct Palimpsest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "palimpsest",
        abstract: "Study machine unlearning in language models trained in stages.",
        discussion: """
        Train Llama/Qwen2-architecture models through sequences of stages in every order, \
        unlearn a stage with local algorithms (GA, NPO, SimNPO, ...), and measure how the \
        outcome depends on the order in which the stages were learned.
        """,
        version: "0.1.0",
        subcommands: [
            Bench.self,
            Run.self,
            RunUnit.self,
            Demo.self,
            Status.self,
            Report.self,
            TheoryCommand.self,
            DataCommand.self,
            Score.self,
            Generate.self,
            Tokenize.self,
            TokenizerCommand.self,
            Train.self,
            Unlearn.self,
            EvalCommand.self,
        ]
    )
}
