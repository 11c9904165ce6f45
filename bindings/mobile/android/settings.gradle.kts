// The Android library (AAR) of the CRM: one module, `:crm`. Build it with ./build-aar.sh, which
// cross-compiles libcrm_mobile.so per ABI into crm/src/main/jniLibs and writes the generated
// Kotlin into crm/src/main/uniffi before running Gradle (see docs/mobile.md, "Android").
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "crm-mobile-android"
include(":crm")
