// swift-tools-version:5.9
// The CRM as a Swift package for iOS: the uniffi-generated Swift (Sources/CrmMobile) over the Rust
// library, shipped as an XCFramework of static libraries (device and simulators) with its C module
// `crm_mobileFFI`. Both are written by ./build-xcframework.sh (on a Mac with Xcode); see
// docs/mobile.md, "iOS".
import PackageDescription

let package = Package(
    name: "CrmMobile",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "CrmMobile", targets: ["CrmMobile"]),
    ],
    targets: [
        .binaryTarget(name: "crm_mobileFFI", path: "crm_mobileFFI.xcframework"),
        .target(name: "CrmMobile", dependencies: ["crm_mobileFFI"], path: "Sources/CrmMobile"),
    ]
)
