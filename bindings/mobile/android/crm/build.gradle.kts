// The `:crm` Android library module: the uniffi-generated Kotlin bindings (src/main/uniffi, written
// by ../build-aar.sh), the hand-written helpers (src/main/kotlin) and libcrm_mobile.so per ABI
// (src/main/jniLibs/<abi>/, written by ../build-aar.sh with cargo-ndk). `gradle :crm:assembleRelease`
// gives build/outputs/aar/crm-release.aar.
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "com.crm.mobile"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        // Keeps JNA and the bindings through the app's R8/ProGuard pass.
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets.getByName("main") {
        // Generated sources, beside the hand-written ones; jniLibs is the default src/main/jniLibs.
        java.srcDir("src/main/uniffi")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17)
    }
}

dependencies {
    // The generated bindings call libcrm_mobile.so through JNA; the @aar artifact carries JNA's own
    // native library (libjnidispatch.so) for every Android ABI.
    api("net.java.dev.jna:jna:5.15.0@aar")
    // Every database call is a suspend function; the paging helpers return Flows.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
}
