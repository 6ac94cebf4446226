// swift-tools-version: 6.1
import PackageDescription

// Numeric code is only fast with the right target CPU: without it SIMD FMAs become libm calls
// (see ../shared/ENGINE.md). Unsafe flags are allowed because this is the root package.
#if arch(x86_64)
let fastMath: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
// Only the GEMM micro-kernels, called after a run-time CPU check (Engine's GEMMMicroKernel).
let avx512: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "skylake-avx512"])]
#else
let fastMath: [SwiftSetting] = []
let avx512: [SwiftSetting] = []
#endif

let package = Package(
    name: "Palimpsest",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "palimpsest", targets: ["CLI"]),
        // The parser fuzz targets (scripts/fuzz.sh); a plain build replays corpus files.
        .executable(name: "palimpsest-fuzz", targets: ["Fuzz"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
        .library(name: "Experiments", targets: ["Experiments"]),
        .library(name: "Theory", targets: ["Theory"]),
        .library(name: "Plots", targets: ["Plots"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .target(name: "Engine", dependencies: ["EngineAVX512"], exclude: ["README.md"], swiftSettings: fastMath),
        .target(name: "EngineAVX512", swiftSettings: avx512),
        .target(name: "JSONSupport"),
        .target(name: "FileSupport"),
        .target(name: "Models", dependencies: ["Engine", "JSONSupport", "FileSupport"], exclude: ["README.md"], swiftSettings: fastMath),
        .target(name: "Tokenizers", dependencies: ["JSONSupport", "FileSupport"], swiftSettings: fastMath),
        .target(name: "Training", dependencies: ["Engine", "Models"], swiftSettings: fastMath),
        .target(name: "Datasets", dependencies: ["Engine", "Tokenizers", "JSONSupport", "FileSupport"], swiftSettings: fastMath),
        .target(name: "Evaluation", dependencies: ["Engine", "Models", "Tokenizers", "FileSupport"], swiftSettings: fastMath),
        .target(
            name: "Experiments",
            dependencies: ["Engine", "Models", "Tokenizers", "Training", "Datasets", "Evaluation", "Theory", "Plots", "FileSupport",
                           .product(name: "Yams", package: "Yams")],
            swiftSettings: fastMath),
        .target(name: "Theory", dependencies: ["Engine"], swiftSettings: fastMath),
        .target(name: "Plots"),
        .executableTarget(
            name: "CLI",
            dependencies: ["Engine", "Models", "Tokenizers", "Training", "Datasets", "Evaluation", "Experiments", "Theory", "Plots",
                           "FileSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: fastMath),
        .executableTarget(name: "Fuzz", dependencies: ["Models", "Tokenizers", "Datasets", "Evaluation", "Experiments"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "EngineAVX512"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        .testTarget(name: "ModelsTests", dependencies: ["Models"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers", "JSONSupport"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        .testTarget(name: "TrainingTests", dependencies: ["Training"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets"], swiftSettings: fastMath),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation"], resources: [.copy("Fixtures")], swiftSettings: fastMath),
        .testTarget(name: "ExperimentsTests", dependencies: ["Experiments"], swiftSettings: fastMath),
        .testTarget(name: "TheoryTests", dependencies: ["Theory"], swiftSettings: fastMath),
        .testTarget(name: "PlotsTests", dependencies: ["Plots"]),
        .testTarget(name: "JSONSupportTests", dependencies: ["JSONSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
