// Plugin versions for the whole build; the app module applies them. AGP 8.9 needs Gradle 8.11.1+
// (gradle/wrapper/gradle-wrapper.properties) and JDK 17.
plugins {
    id("com.android.application") version "8.9.1" apply false
    id("org.jetbrains.kotlin.android") version "2.2.21" apply false
}
